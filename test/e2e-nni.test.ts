/*
 * End to end as `nnictl create --config config.yml` runs it, with the fake manager in NNI's place:
 * config.yml's tuner started through its Python launcher (as test/tuner-launcher.test.ts does),
 * and real trial processes running config.yml's trialCommand, plus flags for tiny data and a tiny
 * model, two at a time through NNI's HTTP trial channel, parameter FIFO and poll loop
 * (test/fake-nni-trials.ts). Needs the compiled dist/ (`npx tsc -p .`).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadExperimentConfig, searchSpaceOfConfig } from '../common/nni-config.js';
import { fromParams, specOfSearchSpace, toTokens, type Params } from '../search-spaces/spaces.js';
import { GLOBAL_STEP } from '../trial/shared-store.js';
import { loadStore } from '../trial/store.js';
import { FakeNniManager, type Frame } from './fake-nni-manager.js';
import { FakeTrialRunner } from './fake-nni-trials.js';
import { fashionTinyDir } from './fashion-tiny.js';

const REPO = resolve(import.meta.dirname, '..');
const TRIALS = 6;
const TRAIN_STEPS = 3;
/** Two tiny Fashion-MNIST images per class, a 2-channel micro supernet of two cells: each trial takes about a second of compute. */
const TINY = `--data-dir ${fashionTinyDir()} --subset 2 --channels 2 --layers 0 --batch-size 8 --eval-batch-size 10 --train-steps ${TRAIN_STEPS} --valid-batches 1`;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface MetricRecord {
  parameter_id: number | null;
  trial_job_id: string;
  type: string;
  sequence: number;
  value: string;
}

const records = (frames: Frame[], type: 'FINAL' | 'PERIODICAL'): MetricRecord[] =>
  frames
    .filter((f) => f.direction === 'to-tuner' && f.type === 'ME')
    .map((f) => JSON.parse(f.content!) as MetricRecord)
    .filter((r) => r.type === type);

const config = loadExperimentConfig(join(REPO, 'config.yml'));
const searchSpace = searchSpaceOfConfig(config) as object;
const spec = specOfSearchSpace(searchSpace);
const running: { manager: FakeNniManager; runner: FakeTrialRunner }[] = [];

beforeAll(() => {
  if (!existsSync(join(REPO, 'dist', 'trial', 'main.js'))) throw new Error('dist/ is missing: run `npx tsc -p .` first');
});
afterAll(async () => {
  for (const { manager, runner } of running.splice(0)) {
    await runner.stop();
    await manager.stop();
  }
});

/**
 * config.yml as NNI would run it, with `flags` appended to its trialCommand (later flags win):
 * the fake manager, its trial runner, and the tuner launched through its Python module.
 */
async function startExperiment(flags: string, maxTrialNumber: number) {
  const storeDir = join(mkdtempSync(join(tmpdir(), 'e2e-store-')), 'store');
  const runner = new FakeTrialRunner({ trialCommand: `${config.trialCommand} ${flags} --store ${storeDir}`, trialCodeDirectory: config.trialCodeDirectory });
  const manager = new FakeNniManager({
    searchSpace,
    trialConcurrency: config.trialConcurrency,
    maxTrialNumber,
    classArgs: config.tuner.classArgs ?? null,
    onTrialSubmitted: (job) => runner.spawn(job),
  });
  running.push({ manager, runner });
  await manager.start();
  await runner.start(manager);
  const tuner = manager.launchTuner({ tuner: { codeDirectory: config.tuner.codeDirectory!, className: config.tuner.className! } });
  const tunerExit = tuner.exited.then(({ code }) => {
    throw new Error(`the tuner exited (code ${code}) early; stderr:\n${tuner.stderr()}`);
  });
  tunerExit.catch(() => {}); // only reported if it wins the race
  /** Waits for `test`, failing early if the tuner dies. */
  const until = (test: () => boolean, timeoutMs: number) => Promise.race([runner.until(test, timeoutMs), tunerExit]);
  return { storeDir, runner, manager, tuner, until };
}

const tunerPid = (manager: FakeNniManager): number =>
  Number(/nni-enas tuner: pid (\d+)/.exec(readFileSync(join(manager.experimentDir, 'log', 'nni-enas-tuner.log'), 'utf8'))![1]);

describe('config.yml end to end under the fake NNI manager', () => {
  it(`runs ${TRIALS} shared-mode trials two at a time, every reward reaches the controller under its parameter_id, and TE leaves no process`, async () => {
    expect(config.trialConcurrency).toBe(2);
    const { storeDir, runner, manager, tuner, until } = await startExperiment(TINY, TRIALS);
    await until(() => manager.status === 'DONE' || manager.status === 'ERROR', 70_000);
    expect(manager.errors).toEqual([]);
    expect(runner.errors).toEqual([]);

    // Every trial ran and exited 0; NNI stopped submitting at maxTrialNumber.
    const trials = [...runner.trials.values()];
    expect(trials).toHaveLength(TRIALS);
    for (const trial of trials) {
      const stderr = readFileSync(join(trial.dir, 'trial.stderr'), 'utf8');
      expect({ exit: trial.exit, status: trial.job.status }, `trial ${trial.job.id}: ${stderr}`).toEqual({ exit: { code: 0, signal: null }, status: 'SUCCEEDED' });
    }

    // Each trial's architecture.json says which parameters it really got (NNI's FIFO may swap
    // them between concurrent trials); its FINAL metric must carry that parameter_id.
    const proposed = new Map(
      manager.fromTuner('TR').map((f) => {
        const tr = JSON.parse(f.content!) as { parameter_id: number; parameters: Params };
        return [tr.parameter_id, tr.parameters] as const;
      }),
    );
    const finals = records(manager.frames, 'FINAL');
    expect(finals).toHaveLength(TRIALS);
    const swapped = trials.filter((t) => {
      const ran = JSON.parse(readFileSync(join(t.dir, 'architecture.json'), 'utf8')) as { parameter_id: number; parameters: Params };
      expect(ran.parameters).toEqual(proposed.get(ran.parameter_id));
      const final = finals.find((r) => r.trial_job_id === t.job.id)!;
      expect(final.parameter_id).toBe(ran.parameter_id);
      expect(readFileSync(join(t.dir, 'architecture.svg'), 'utf8')).toMatch(/^<svg /);
      expect(readFileSync(join(t.dir, 'trial.stdout'), 'utf8')).toContain(`reward ${(JSON.parse(final.value) as { default: number }).default.toFixed(4)}`);
      return ran.parameter_id !== (JSON.parse(t.job.hyperParams) as { parameter_id: number }).parameter_id;
    });
    expect(new Set(finals.map((r) => r.parameter_id)).size).toBe(TRIALS);
    expect(records(manager.frames, 'PERIODICAL').length).toBeGreaterThanOrEqual(TRIALS);

    // The store advanced once per trial and kept every trial's steps.
    const store = loadStore(storeDir);
    expect(store.version).toBe(1 + TRIALS);
    expect(store.tensors.get(GLOBAL_STEP)!.data[0]).toBe(TRIALS * TRAIN_STEPS);

    // TE: the tuner checkpoints and exits; nothing is left running.
    await manager.terminate();
    expect(await tuner.exited).toEqual({ code: 0, signal: null });
    await runner.stop();
    for (const pid of [tunerPid(manager), tuner.shell.pid!, ...trials.map((t) => t.pid)]) expect(alive(pid)).toBe(false);

    // The tuner recorded each reward under the metric's parameter_id, with that proposal's tokens.
    const checkpoint = JSON.parse(readFileSync(join(manager.experimentDir, 'checkpoint', 'nni-enas-tuner.json'), 'utf8')) as {
      history: { parameterId: number; trialJobId: string; tokens: number[]; reward: number }[];
    };
    const expected = finals.map((r) => ({
      parameterId: r.parameter_id,
      trialJobId: r.trial_job_id,
      source: 'trial',
      tokens: toTokens(fromParams(spec, proposed.get(r.parameter_id!)), spec),
      reward: (JSON.parse(r.value) as { default: number }).default,
    }));
    expect(checkpoint.history).toEqual(expect.arrayContaining(expected));
    expect(checkpoint.history).toHaveLength(TRIALS);
    const log = readFileSync(join(manager.experimentDir, 'log', 'nni-enas-tuner.log'), 'utf8');
    // config.yml's warmup_trials cover these first trials: recorded, kept from the controller.
    expect(config.tuner.classArgs?.warmup_trials).toBeGreaterThanOrEqual(TRIALS);
    for (const r of expected) expect(log).toContain(`reward ${r.reward} for warm-up parameter ${r.parameterId} (trial ${r.trialJobId}) recorded, not used`);
    console.log(`${TRIALS} trials, ${swapped.length} of them ran parameters NNI's FIFO handed them instead of their own`);
  });

  it('nnictl stop while trials train: TE ends the tuner, SIGINT the trials, no process is left and the store is intact', async () => {
    const { storeDir, runner, manager, tuner, until } = await startExperiment(`${TINY} --train-steps 100000`, 10);
    // Both trials have loaded their data (the summary's model line) and the store exists.
    const built = () =>
      runner.trials.size === 2 && [...runner.trials.values()].every((t) => /^model: /m.test(readFileSync(join(t.dir, 'trial.stdout'), 'utf8')));
    await until(() => built() && existsSync(join(storeDir, 'manifest.json')), 60_000);
    const before = readFileSync(join(storeDir, 'manifest.json'), 'utf8');
    // NNI's order: TE to the tuner first, then every running trial cancelled.
    await manager.terminate();
    expect(await tuner.exited).toEqual({ code: 0, signal: null });
    await runner.stop();
    const trials = [...runner.trials.values()];
    expect(trials).toHaveLength(2);
    for (const trial of trials) expect(trial.exit).toEqual({ code: null, signal: 'SIGINT' });
    for (const pid of [tunerPid(manager), tuner.shell.pid!, ...trials.map((t) => t.pid)]) expect(alive(pid)).toBe(false);
    // Killed before committing: the store is the one the first trial created, whole.
    expect(readFileSync(join(storeDir, 'manifest.json'), 'utf8')).toBe(before);
    expect(loadStore(storeDir).version).toBe(1);
  });
});
