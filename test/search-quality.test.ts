/*
 * `nni-enas bench search-quality` (bench/search-quality.ts) on a tiny micro space and tiny
 * Fashion-MNIST, through the compiled command line (needs dist/): a run interrupted with SIGINT
 * continues on a rerun with `--resume`, then tabulates the right members; a rerun skips finished
 * pieces and leaves their files alone; a retraining without its result is resumed to the same
 * score; the statistics against hand-computed values; bad input is refused before anything is
 * written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { MICRO_OPS } from '../search-spaces/genotype.js';
import type { SpaceSpec } from '../search-spaces/spaces.js';
import { overallEta, pairedDifference, summarize, welchDifference, type SearchQualityTable } from '../bench/search-quality.js';
import { freshDir, REPO, writeConfig } from './embedded-fixtures.js';
import { fashionTinyDir } from './fashion-tiny.js';

const CLI = join(REPO, 'dist/cli/main.js');
const SPEC: SpaceSpec = { space: 'micro', nodes: 2, ops: MICRO_OPS };
const SEARCHES = ['enas-s0', 'random-s0'];
const RETRAINS = ['retrain-enas-s0', 'retrain-random-s0', 'retrain-cell1', 'retrain-cell2'];

let config: string;
let out: string;
/** --epochs 4 leaves time to interrupt a search after its first epoch. */
const benchArgs = () => ['bench', 'search-quality', '--config', config, '--out', out, '--preset', 'tiny', '--retrain-preset', 'tiny', '--seeds', '1', '--random-cells', '2', '--epochs', '4'];
const bench = (extra: string[] = []) => spawnSync(process.execPath, [CLI, ...benchArgs(), ...extra], { encoding: 'utf8' });
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const table = () => readJson<SearchQualityTable>(join(out, 'search-quality.json'));
const outputs = () => [...SEARCHES.map((d) => join(out, d, 'best.json')), ...RETRAINS.map((d) => join(out, d, 'result.json'))];

describe('bench search-quality, tiny micro run', () => {
  let interrupted: { code: number | null; stderr: string };
  let completed: ReturnType<typeof bench>;

  beforeAll(async () => {
    config = writeConfig(SPEC, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`);
    out = join(freshDir('search-quality'), 'out');
    // Interrupted once the ENAS search has finished an epoch, as a user's Ctrl-C would.
    const child = spawn(process.execPath, [CLI, ...benchArgs(), '--parallel', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const log = join(out, 'enas-s0', 'bench.log');
    while (!(existsSync(log) && /^epoch 1\/4:/m.test(readFileSync(log, 'utf8')))) {
      if (child.exitCode !== null) throw new Error(`the bench exited (${child.exitCode}) before the search's first epoch: ${stderr}`);
      await sleep(50);
    }
    child.kill('SIGINT');
    interrupted = { code: await exited, stderr };
    completed = bench();
  }, 300_000);

  it('stops on SIGINT with checkpoints and continues the interrupted search with --resume', () => {
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toMatch(/stopped; run the same command again to continue/);
    expect(completed.status).toBe(0);
    expect(completed.stderr).toMatch(/^\[[\d:]+\] resume enas-s0 \(search/m);
    const log = readFileSync(join(out, 'enas-s0', 'bench.log'), 'utf8');
    expect(log).toMatch(/^== .* search .*--resume/m);
    expect(log).toMatch(/^resuming .*: \d+ epochs? done/m);
  });

  it('tabulates ENAS, random-with-sharing and random cells with the right members', () => {
    const result = table();
    const score = (dir: string) => readJson<{ test: { accuracy: number } }>(join(out, dir, 'result.json')).test.accuracy;
    expect(result).toMatchObject({ space: 'micro', metric: 'test accuracy', higherIsBetter: true, settings: { seeds: 1, randomCells: 2, searchFlags: { epochs: 4 } } });
    expect(result.groups.enas.members).toEqual([{ piece: 'retrain-enas-s0', seed: 0, score: score('retrain-enas-s0') }]);
    expect(result.groups.randomSharing.members).toEqual([{ piece: 'retrain-random-s0', seed: 0, score: score('retrain-random-s0') }]);
    expect(result.groups.randomCells.members).toEqual([
      { piece: 'retrain-cell1', seed: 1, score: score('retrain-cell1') },
      { piece: 'retrain-cell2', seed: 2, score: score('retrain-cell2') },
    ]);
    expect(result.groups.randomCells.mean).toBeCloseTo((score('retrain-cell1') + score('retrain-cell2')) / 2, 12);
    // One seed: the differences have no standard error.
    expect(result.differences.enasMinusRandomSharing).toMatchObject({ mean: score('retrain-enas-s0') - score('retrain-random-s0'), se: null });
    expect(result.differences.enasMinusRandomCells.se).toBeNull();
    // The pieces are what they claim: the two policies with the same seed, and which cell each retraining trained.
    const settingsOf = (dir: string) => readJson<{ controller: { policy: string; seed: number }; schedule: { epochs: number } }>(join(out, dir, 'settings.json'));
    expect(settingsOf('enas-s0')).toMatchObject({ controller: { policy: 'enas', seed: 0 }, schedule: { epochs: 4 } });
    expect(settingsOf('random-s0')).toMatchObject({ controller: { policy: 'random', seed: 0 }, schedule: { epochs: 4 } });
    const retrainOf = (dir: string) => readJson<{ arch: string; randomSeed: number | null; preset: string }>(join(out, dir, 'retrain.json'));
    expect(retrainOf('retrain-enas-s0')).toMatchObject({ arch: join(out, 'enas-s0', 'best.json'), randomSeed: null, preset: 'tiny' });
    expect(retrainOf('retrain-random-s0')).toMatchObject({ arch: join(out, 'random-s0', 'best.json'), randomSeed: null });
    expect([retrainOf('retrain-cell1').randomSeed, retrainOf('retrain-cell2').randomSeed]).toEqual([1, 2]);
    expect(result.pieces.map((p) => p.piece)).toEqual([...SEARCHES, ...RETRAINS]);
    for (const piece of result.pieces) expect(piece.wallSeconds).toBeGreaterThan(0);
    // Printed and written alike.
    const markdown = readFileSync(join(out, 'search-quality.md'), 'utf8');
    expect(completed.stdout).toBe(markdown);
    expect(markdown).toMatch(/^\| ENAS derived \| 1 \| [\d.]+ ± — \|/m);
    expect(markdown).toMatch(/^\| uniformly random cells \| 2 \| [\d.]+ ± [\d.]+ \|/m);
  });

  it('skips finished pieces on a rerun: files untouched, the same table', () => {
    const before = outputs().map((path) => statSync(path).mtimeMs);
    const [json, markdown] = ['search-quality.json', 'search-quality.md'].map((file) => readFileSync(join(out, file), 'utf8'));
    const rerun = bench();
    expect(rerun.status).toBe(0);
    expect(rerun.stderr.match(/ skip /g)).toHaveLength(SEARCHES.length + RETRAINS.length);
    expect(rerun.stderr).not.toMatch(/ (start|resume) /);
    expect(outputs().map((path) => statSync(path).mtimeMs)).toEqual(before);
    expect(readFileSync(join(out, 'search-quality.json'), 'utf8')).toBe(json);
    expect(readFileSync(join(out, 'search-quality.md'), 'utf8')).toBe(markdown);
  });

  it('resumes a retraining that lost its result to the same score', () => {
    const before = table();
    rmSync(join(out, 'retrain-cell2', 'result.json'));
    const rerun = bench();
    expect(rerun.status).toBe(0);
    expect(rerun.stderr).toMatch(/ resume retrain-cell2 /);
    expect(readFileSync(join(out, 'retrain-cell2', 'bench.log'), 'utf8')).toMatch(/^== .* retrain .*--resume/m);
    const after = table();
    expect(after.groups).toEqual(before.groups);
    expect(after.differences).toEqual(before.differences);
  });

  it('refuses a rerun whose settings differ from the pieces already there', () => {
    const rerun = spawnSync(process.execPath, [CLI, ...benchArgs().slice(0, -2), '--epochs', '3'], { encoding: 'utf8' });
    expect(rerun.status).toBe(2);
    expect(rerun.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^nni-enas: .*enas-s0 holds a search with other settings \(schedule\.epochs: 4 there, 3 here\)/)]);
  });
});

describe('bad input', () => {
  it('gives one line naming the flag or path, exits 2 and writes nothing', () => {
    const config = writeConfig(SPEC, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`);
    const foreign = join(freshDir('foreign'), 'config.yml');
    writeFileSync(foreign, readFileSync(config, 'utf8').replace('nni_enas_tuner.EnasTuner', 'other_tuner.OtherTuner'));
    for (const [args, named] of [
      [['--config', config, '--bogus', '1'], /bogus/],
      [['--config', config, '--seeds', '0'], /--seeds/],
      [['--config', config, '--random-cells', '0'], /--random-cells/],
      [['--config', config, '--epochs', '0'], /--epochs/],
      [['--config', foreign], /config\.yml: tuner other_tuner.OtherTuner is not/],
    ] as const) {
      const out = join(freshDir('bad'), 'out');
      const run = spawnSync(process.execPath, [CLI, 'bench', 'search-quality', '--preset', 'tiny', '--out', out, ...args], { encoding: 'utf8' });
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(named)]);
      expect(existsSync(out)).toBe(false);
    }
  });
});

describe('statistics', () => {
  it('mean and sample sd', () => {
    // 1..4: mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
    const s = summarize([1, 2, 3, 4]);
    expect(s.n).toBe(4);
    expect(s.mean).toBeCloseTo(2.5, 12);
    expect(s.sd).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(summarize([0.7])).toEqual({ n: 1, mean: 0.7, sd: null });
  });

  it('paired difference: mean of the per-seed differences and sd/√n', () => {
    // d = 0.02, −0.01, 0.05: mean 0.02, deviations 0, −0.03, 0.03, sd 0.03, SE 0.03/√3.
    const d = pairedDifference([0.8, 0.85, 0.9], [0.78, 0.86, 0.85]);
    expect(d.mean).toBeCloseTo(0.02, 12);
    expect(d.se).toBeCloseTo(0.03 / Math.sqrt(3), 12);
    expect(d.df).toBe(2);
    expect(pairedDifference([0.8], [0.7])).toMatchObject({ se: null, df: null });
  });

  it("Welch's SE and degrees of freedom", () => {
    // a: mean 0.85, variance 0.0025 (n 3); b: mean 0.75, variance 0.005 (n 2).
    // SE² = 0.0025/3 + 0.005/2 = 1/300; df = (1/300)² / ((1/1200)²/2 + (1/400)²/1) = 32/19.
    const d = welchDifference([0.8, 0.85, 0.9], [0.7, 0.8]);
    expect(d.mean).toBeCloseTo(0.1, 12);
    expect(d.se).toBeCloseTo(Math.sqrt(1 / 300), 12);
    expect(d.df).toBeCloseTo(32 / 19, 10);
    expect(welchDifference([0.8], [0.7, 0.8])).toMatchObject({ se: null, df: null });
    expect(welchDifference([0.8, 0.8], [0.7, 0.7])).toEqual({ mean: expect.closeTo(0.1, 12), se: 0, df: null });
  });

  it('overall ETA: waiting pieces at their mean, running ones at what is left, over the parallel slots', () => {
    expect(overallEta({ search: 10, retrain: 4 }, ['retrain', 'retrain'], [{ kind: 'search', elapsed: 3 }], 2)).toBe((4 + 4 + 7) / 2);
    expect(overallEta({ search: 10, retrain: 4 }, [], [{ kind: 'search', elapsed: 12 }], 1)).toBe(0);
    expect(overallEta({ search: 10 }, ['retrain'], [], 1)).toBeNull();
  });
});
