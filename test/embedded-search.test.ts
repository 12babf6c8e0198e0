/*
 * The embedded search (embedded/search.ts) on a tiny micro space and tiny Fashion-MNIST: a
 * 2-epoch run writes every output; resuming after epoch 1, or after a stop in the middle of an
 * epoch, continues exactly as the uninterrupted run (same architectures, rewards and history);
 * the macro space runs through the same loop; a search trained over two worker threads
 * checkpoints the replicas' weights and resumes from them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRun } from '../common/results.js';
import { MACRO_OPS, MICRO_OPS } from '../search-spaces/genotype.js';
import { toTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { loadStore } from '../trial/store.js';
import { BEST_JSON, BEST_SO_FAR_JSON, type ArchitectureFile } from '../embedded/architectures.js';
import { readHistory, type HistoryRecord } from '../embedded/history.js';
import { runSearch } from '../embedded/search.js';
import { buildSearch } from '../embedded/search-setup.js';
import { readModelState } from '../trial/store-tf.js';
import { resolveSearchSettings, type SearchSettings } from '../embedded/settings.js';
import { freshDir, quietIo, stopAfter, writeConfig } from './embedded-fixtures.js';
import { fashionTinyDir } from './fashion-tiny.js';

const SPEC: SpaceSpec = { space: 'micro', nodes: 2, ops: MICRO_OPS };

let settings: SearchSettings;
let uninterrupted: string;

const withEpochs = (epochs: number): SearchSettings => ({ ...settings, schedule: { ...settings.schedule, epochs } });

/** A history without its timings, which differ from run to run. */
const untimed = (dir: string) =>
  readHistory(join(dir, 'history.jsonl')).map((record: HistoryRecord) => {
    const { seconds: _seconds, ...rest } = record;
    if (rest.type === 'epoch') {
      const { phaseSeconds: _phases, ...kept } = rest;
      return kept;
    }
    return rest;
  });

const trialsOf = (dir: string) => readRun(dir).trials.map(({ parameters, metric, extra, parameter_id }) => ({ parameter_id, parameters, metric, extra }));

beforeAll(async () => {
  await setupBackend('wasm');
  const config = writeConfig(SPEC, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`);
  settings = resolveSearchSettings(config, { preset: 'tiny', trial: {} }).settings;
  uninterrupted = freshDir('search');
  await runSearch(uninterrupted, withEpochs(2), false, quietIo());
});

describe('embedded search', () => {
  it('runs 2 epochs and writes every output', () => {
    for (const file of [
      'settings.json',
      'run.json',
      'trials.jsonl',
      'history.jsonl',
      'reward.svg',
      'entropy.svg',
      'valid.svg',
      BEST_SO_FAR_JSON,
      'best-architecture.svg',
      BEST_JSON,
      'best.svg',
      'checkpoint/manifest.json',
    ])
      expect(existsSync(join(uninterrupted, file)), file).toBe(true);
    const { schedule, controller } = settings;
    const history = readHistory(join(uninterrupted, 'history.jsonl'));
    expect(history.filter((r) => r.type === 'epoch')).toHaveLength(2);
    expect(history.filter((r) => r.type === 'update')).toHaveLength(2 * schedule.controllerSteps);
    for (const record of history) {
      expect(Number.isFinite(record.reward)).toBe(true);
      expect(Number.isFinite(record.entropy) && record.entropy > 0).toBe(true);
    }
    const epoch = history.find((r) => r.type === 'epoch')!;
    expect(epoch.type === 'epoch' && epoch.report).toHaveLength(schedule.reportSamples);
    // run.json + trials.jsonl in the results format `compare` reads: one record per reward sample.
    const run = readRun(uninterrupted);
    expect(run.info).toMatchObject({ tuner: 'enas', mode: 'shared', space: 'micro', optimize: 'maximize' });
    expect(run.trials).toHaveLength(2 * schedule.controllerSteps * controller.numAggregate);
    expect(run.warnings).toEqual([]);
    const best = JSON.parse(readFileSync(join(uninterrupted, BEST_JSON), 'utf8')) as ArchitectureFile;
    expect(best.tokens).toEqual(toTokens(best.genotype, SPEC));
    expect(best.ranking[0]!.tokens).toEqual(best.tokens);
    expect(best.data.dataset).toBe('fashion-mnist');
  });

  it('resumes after epoch 1 exactly as the uninterrupted run continues', async () => {
    const dir = freshDir('resume');
    await runSearch(dir, withEpochs(1), false, quietIo());
    expect(readHistory(join(dir, 'history.jsonl')).filter((r) => r.type === 'epoch')).toHaveLength(1);
    await runSearch(dir, withEpochs(2), true, quietIo());
    expect(trialsOf(dir)).toEqual(trialsOf(uninterrupted));
    expect(untimed(dir)).toEqual(untimed(uninterrupted));
    const bestOf = (d: string) => (JSON.parse(readFileSync(join(d, BEST_JSON), 'utf8')) as ArchitectureFile).ranking;
    expect(bestOf(dir)).toEqual(bestOf(uninterrupted));
    const stateOf = (d: string) => {
      const { seconds: _seconds, ...rest } = loadStore(join(d, 'checkpoint')).meta.state as Record<string, unknown>;
      return rest;
    };
    expect(stateOf(dir)).toEqual(stateOf(uninterrupted));
  });

  it('searches the macro space the same way', async () => {
    const macro: SpaceSpec = { space: 'macro', layers: 4, ops: MACRO_OPS };
    const macroSettings = resolveSearchSettings(writeConfig(macro, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`), { preset: 'tiny', epochs: 1, trial: {} }).settings;
    const dir = freshDir('macro');
    const outcome = await runSearch(dir, macroSettings, false, quietIo());
    expect(outcome).toMatchObject({ finished: true, epochs: 1 });
    const best = JSON.parse(readFileSync(join(dir, BEST_JSON), 'utf8')) as ArchitectureFile;
    expect(best.genotype.space).toBe('macro');
    expect(readRun(dir).trials).toHaveLength(macroSettings.schedule.controllerSteps * macroSettings.controller.numAggregate);
  });

  it('stops mid-epoch with a checkpoint and resumes to the same run', async () => {
    const dir = freshDir('stop');
    // Safe points are checked once per training step and once per controller update (its samples are scored together): this stops in epoch 2's child phase.
    const steps = readHistory(join(uninterrupted, 'history.jsonl')).find((r) => r.type === 'epoch')!.globalStep;
    const stopped = await runSearch(dir, withEpochs(2), false, quietIo(stopAfter(steps + settings.schedule.controllerSteps + 1)));
    expect(stopped).toMatchObject({ finished: false, epochs: 1 });
    const state = loadStore(join(dir, 'checkpoint')).meta.state as { phase: string; phaseDone: number };
    expect(state).toMatchObject({ phase: 'child', phaseDone: 1 });
    const resumed = await runSearch(dir, withEpochs(2), true, quietIo());
    expect(resumed).toMatchObject({ finished: true, epochs: 2 });
    expect(trialsOf(dir)).toEqual(trialsOf(uninterrupted));
    expect(untimed(dir)).toEqual(untimed(uninterrupted));
  });

  it('stops between two controller updates and resumes to the same run', async () => {
    const dir = freshDir('stop-controller');
    const steps = readHistory(join(uninterrupted, 'history.jsonl')).find((r) => r.type === 'epoch')!.globalStep;
    const stopped = await runSearch(dir, withEpochs(2), false, quietIo(stopAfter(steps + 1)));
    expect(stopped).toMatchObject({ finished: false, epochs: 0 });
    const state = loadStore(join(dir, 'checkpoint')).meta.state as { phase: string; phaseDone: number };
    expect(state).toMatchObject({ phase: 'controller', phaseDone: settings.controller.numAggregate });
    await runSearch(dir, withEpochs(2), true, quietIo());
    expect(trialsOf(dir)).toEqual(trialsOf(uninterrupted));
    expect(untimed(dir)).toEqual(untimed(uninterrupted));
  });

  it('trains over 2 worker threads, checkpoints the replicas\' weights and resumes from them', async () => {
    const dir = freshDir('workers');
    const fresh = buildSearch(withEpochs(1), 1);
    const initial = readModelState(fresh.model.state);
    fresh.model.dispose();
    fresh.controller.dispose();
    const weightsOf = () => loadStore(join(dir, 'checkpoint')).tensors;
    const changed = (a: ReadonlyMap<string, { data: ArrayLike<number> }>, b: ReadonlyMap<string, { data: ArrayLike<number> }>) =>
      [...a].filter(([name, t]) => t.data.length && Array.from(t.data).some((v, i) => v !== b.get(name)!.data[i])).map(([name]) => name);

    expect(await runSearch(dir, withEpochs(1), false, quietIo(), 2)).toMatchObject({ finished: true, epochs: 1 });
    const afterOne = weightsOf();
    expect([...afterOne.keys()].sort()).toEqual([...initial.keys()].sort());
    // The trained weights live in the workers: a checkpoint of the main thread's stale copy would equal the initial weights.
    expect(changed(afterOne, initial).length).toBeGreaterThan(0);
    expect(await runSearch(dir, withEpochs(2), true, quietIo(), 2)).toMatchObject({ finished: true, epochs: 2 });
    expect(changed(weightsOf(), afterOne).length).toBeGreaterThan(0);
    const epochs = readHistory(join(dir, 'history.jsonl')).filter((r) => r.type === 'epoch');
    expect(epochs).toHaveLength(2);
    for (const epoch of epochs) expect(epoch.type === 'epoch' && Number.isFinite(epoch.trainLoss)).toBe(true);
  });
});
