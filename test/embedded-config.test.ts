/*
 * How the embedded runner reads config.yml (embedded/settings.ts) and talks to the user: presets
 * and overrides, one clear error for a bad config (missing file, foreign space, another tuner),
 * the progress line on a terminal and in a log, the best-so-far ranking.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MICRO_OPS } from '../search-spaces/genotype.js';
import { searchSpaceOf, DEFAULT_SPECS, type SpaceSpec } from '../search-spaces/spaces.js';
import { parseTrialArgs } from '../trial/options.js';
import { rankInto } from '../embedded/architectures.js';
import { EtaEstimator, ProgressLine } from '../embedded/progress.js';
import { resolveSearchSettings } from '../embedded/settings.js';
import { SEARCH_PRESETS } from '../embedded/presets.js';
import { freshDir, KJV_PTB, REPO, writeConfig } from './embedded-fixtures.js';
import { fashionTinyDir } from './fashion-tiny.js';

const MICRO = DEFAULT_SPECS.micro;
const SMALL_MICRO: SpaceSpec = { space: 'micro', nodes: 2, ops: MICRO_OPS };

describe('settings from config.yml', () => {
  it('takes the space, classArgs and trialCommand, with the preset and flags on top', () => {
    const config = writeConfig(MICRO, '--dataset fashion-mnist --channels 20 --seed 4', { seed: 9, learning_rate: 0.01 });
    const { settings, notes } = resolveSearchSettings(config, { preset: 'default', controllerSteps: 3, trial: { layers: 2 } });
    expect(settings.spec).toEqual(MICRO);
    expect(settings.controller).toMatchObject({ seed: 9, learningRate: 0.01, numAggregate: 10 });
    expect(settings.schedule).toMatchObject({ ...SEARCH_PRESETS.default.micro.schedule, controllerSteps: 3 });
    const trial = parseTrialArgs(settings.trialArgs);
    expect(trial).toMatchObject({ dataset: 'fashion-mnist', channels: SEARCH_PRESETS.default.micro.trial.channels, layers: 2, seed: 4 });
    expect(notes).toEqual([expect.stringMatching(/replaces trialCommand --channels 20/)]);
  });

  it('resolves a relative --data-dir against trialCodeDirectory, as NNI runs the trial there', () => {
    const config = writeConfig(DEFAULT_SPECS.rnn, '--dataset ptb --data-dir ../shared/data/kjv-ptb');
    const { settings } = resolveSearchSettings(config, { preset: 'tiny', seed: 2, trial: {} });
    expect(parseTrialArgs(settings.trialArgs)).toMatchObject({ dataDir: KJV_PTB, seed: 2 });
    expect(settings.controller.seed).toBe(2);
  });

  it('refuses a bad config with one line naming the file', () => {
    const missing = join(freshDir('none'), 'config.yml');
    expect(() => resolveSearchSettings(missing, { preset: 'tiny', trial: {} })).toThrow(/config\.yml: no such file/);

    const foreign = writeConfig(MICRO, '--dataset fashion-mnist');
    writeFileSync(join(foreign, '..', 'space.json'), JSON.stringify({ lr: { _type: 'choice', _value: [0.1, 0.01] } }));
    expect(() => resolveSearchSettings(foreign, { preset: 'tiny', trial: {} })).toThrow(/space\.json: search space: not an ENAS space/);

    const table = writeConfig(DEFAULT_SPECS.nb201, '--mode table');
    expect(() => resolveSearchSettings(table, { preset: 'tiny', trial: {} })).toThrow(/NAS-Bench-201 is a lookup table/);

    const tpe = writeConfig(MICRO, '--dataset fashion-mnist');
    writeFileSync(tpe, readReplace(tpe, /tuner:[\s\S]*trainingService/, 'tuner:\n  name: TPE\ntrainingService'));
    expect(() => resolveSearchSettings(tpe, { preset: 'tiny', trial: {} })).toThrow(/tuner TPE is not nni_enas_tuner\.EnasTuner/);

    const badArgs = writeConfig(MICRO, '--dataset fashion-mnist', { lstm_size: 'big' });
    expect(() => resolveSearchSettings(badArgs, { preset: 'tiny', trial: {} })).toThrow(/lstm_size/);
  });

  it('runs as the README starts it: `npx nni-enas` from the repository (the built CLI is executable)', () => {
    const run = spawnSync('npx', ['--no', '--', 'nni-enas', '--help'], { cwd: REPO, encoding: 'utf8' });
    expect(run.stderr).not.toMatch(/Permission denied/);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/search/);
  });

  it('prints the error as one line and exits non-zero from the command line', () => {
    const foreign = writeConfig(MICRO, '--dataset fashion-mnist');
    writeFileSync(join(foreign, '..', 'space.json'), JSON.stringify(searchSpaceOf(DEFAULT_SPECS.nb201)));
    for (const config of [join(freshDir('none'), 'config.yml'), foreign]) {
      const run = spawnSync(process.execPath, [join(REPO, 'dist/cli/main.js'), 'search', '--config', config, '--out', freshDir('cli')], { encoding: 'utf8' });
      expect(run.status).toBe(2);
      expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^nni-enas: .*config\.yml|^nni-enas: .*space\.json/)]);
    }
  });
});

describe('Ctrl-C', () => {
  it('stops at a safe point with a checkpoint, and --resume finishes the search', async () => {
    const config = writeConfig(SMALL_MICRO, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`);
    const out = freshDir('sigint');
    const search = spawn(process.execPath, [join(REPO, 'dist/cli/main.js'), 'search', '--config', config, '--preset', 'tiny', '--out', out, '--epochs', '100'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let interrupted = false;
    const exited = new Promise<number | null>((done) => search.on('exit', (code) => done(code)));
    search.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // After the first epoch line, interrupt once, as a user's Ctrl-C would.
      if (!interrupted && /^epoch 1\/100:/m.test(stdout)) {
        interrupted = true;
        search.kill('SIGINT');
      }
    });
    expect(await exited).toBe(130);
    expect(stdout).toMatch(/SIGINT: stopping at the next safe point/);
    expect(stdout).toMatch(/checkpoint written\. Continue with:\n.*--resume/);
    const resumed = spawnSync(process.execPath, [join(REPO, 'dist/cli/main.js'), 'search', '--config', config, '--out', out, '--resume', '--epochs', '2'], {
      encoding: 'utf8',
    });
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toMatch(/^resuming .* epochs? done/m);
    expect(resumed.stdout).toMatch(/search finished/);
  });
});

const readReplace = (path: string, pattern: RegExp, replacement: string): string => readFileSync(path, 'utf8').replace(pattern, replacement);

describe('progress line', () => {
  const capture = (isTTY: boolean) => {
    const out: string[] = [];
    return { stream: { isTTY, columns: 200, write: (text: string) => out.push(text) }, out };
  };

  it('redraws one line on a terminal and keeps log lines above it', () => {
    const { stream, out } = capture(true);
    const line = new ProgressLine(stream);
    line.update({ label: 'epoch 1/2 child 3/10', fraction: 0.15, etaSeconds: 125, stats: 'loss 2.300' }, true);
    line.log('epoch 1/2: done');
    line.close();
    expect(out[0]).toBe('\r\x1b[2Kepoch 1/2 child 3/10 [###-----------------] 15% ETA 2:05 | loss 2.300');
    expect(out.slice(1, 3)).toEqual(['\r\x1b[2K', 'epoch 1/2: done\n']);
    expect(out.at(-1)).toBe('\r\x1b[2K');
  });

  it('writes plain, rate-limited lines to a pipe', () => {
    const { stream, out } = capture(false);
    const line = new ProgressLine(stream, 60_000);
    line.update({ label: 'epoch 1/2', fraction: 0.5, etaSeconds: null, stats: '' });
    line.update({ label: 'epoch 1/2', fraction: 0.6, etaSeconds: null, stats: '' });
    expect(out).toEqual(['epoch 1/2 50% ETA --\n']);
  });

  it('estimates the time left per kind of work, as a lower bound while a kind is untimed', () => {
    const eta = new EtaEstimator<'step' | 'eval'>();
    expect(eta.eta({ step: 3 })).toBeNull();
    eta.record('step', 2);
    eta.record('step', 4);
    expect(eta.eta({ step: 3, eval: 1 })).toEqual({ seconds: 9, partial: true });
    eta.record('eval', 10);
    expect(eta.eta({ step: 3, eval: 1 })).toEqual({ seconds: 19, partial: false });
  });
});

describe('best-so-far ranking', () => {
  const entry = (tokens: number[], reward: number) => ({ tokens, score: { reward, loss: 1, batches: 1 } });

  it('keeps each architecture once, at its best score, best first', () => {
    let list = rankInto([], entry([1], 0.5), 2);
    list = rankInto(list, entry([2], 0.7), 2);
    list = rankInto(list, entry([1], 0.8), 2);
    list = rankInto(list, entry([3], 0.1), 2);
    expect(list.map((e) => [e.tokens[0], e.score.reward])).toEqual([
      [1, 0.8],
      [2, 0.7],
    ]);
  });
});
