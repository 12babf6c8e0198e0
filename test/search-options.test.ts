/*
 * The search's switchable deviations from the reference (docs/embedded.md, "Does the controller
 * help?") each change what they claim and nothing else: per-node weight sharing makes two inputs
 * of one node read the same variables; the init scale scales the He-normal init; gradient
 * clipping bounds the global norm; warm-up epochs leave the controller untouched and resume
 * exactly; fixed reward batches score every sample of an update on the same images.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRun } from '../common/results.js';
import { MICRO_OPS, type MicroGenotype } from '../search-spaces/genotype.js';
import { fromParams, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { clipGlobalNorm } from '../trial/cnn.js';
import { MicroSupernet } from '../trial/supernet/micro.js';
import type { WeightSharing } from '../trial/options.js';
import { loadStore } from '../trial/store.js';
import { readHistory } from '../embedded/history.js';
import { runSearch } from '../embedded/search.js';
import { buildSearch, restoreSearch } from '../embedded/search-setup.js';
import { resolveSearchSettings, type SearchSettings } from '../embedded/settings.js';
import { freshDir, quietIo, stopAfter, writeConfig } from './embedded-fixtures.js';
import { fashionTinyDir } from './fashion-tiny.js';

const SPEC: SpaceSpec = { space: 'micro', nodes: 2, ops: MICRO_OPS };

beforeAll(async () => {
  await setupBackend('wasm');
});

/** A micro cell pair whose node 2 applies sepconv3x3 to `input` in its first slot. */
function arcReading(input: number): MicroGenotype {
  const cell = [
    { inputs: [input, 1] as [number, number], ops: ['sepconv3x3', 'identity'] as [string, string] },
    { inputs: [2, 0] as [number, number], ops: ['maxpool3x3', 'avgpool3x3'] as [string, string] },
  ];
  return { space: 'micro', normal: cell, reduce: cell } as unknown as MicroGenotype;
}

function tinySupernet(weightSharing: WeightSharing, initScale = 1): MicroSupernet {
  return new MicroSupernet({ inputShape: [8, 8, 1], numClasses: 3, channels: 4, layers: 0, nodes: 2, auxHead: false, seed: 1, weightSharing, initScale });
}

/** Names of the state variables that changed in one training step of `genotype`. */
function changedBy(model: MicroSupernet, genotype: MicroGenotype): string[] {
  const before = new Map([...model.state].map(([name, v]) => [name, v.dataSync().slice()]));
  const batch = { x: tf.randomNormal([4, 8, 8, 1], 0, 1, 'float32', 5), y: tf.tensor1d([0, 1, 2, 0], 'int32') };
  model.trainStep(genotype, batch, 0.1);
  tf.dispose([batch.x, batch.y]);
  return [...model.state].filter(([name, v]) => !name.endsWith('/momentum') && v.dataSync().some((x, i) => x !== before.get(name)![i])).map(([name]) => name);
}

const firstSepConv = (names: string[]) => names.filter((n) => n.startsWith('cell_0/node_2/x/sepconv3x3/')).sort();

describe('weight sharing', () => {
  it('per-node: the op reads the same variables whichever input it is applied to', () => {
    const model = tinySupernet('per-node');
    const fromInput0 = firstSepConv(changedBy(model, arcReading(0)));
    const fromInput1 = firstSepConv(changedBy(model, arcReading(1)));
    expect(fromInput0.length).toBeGreaterThan(0);
    expect(fromInput1).toEqual(fromInput0);
    expect([...model.state.keys()].some((n) => n.includes('/from_') && n.includes('/node_'))).toBe(false);
    model.dispose();
  });

  it('per-input (the reference): each input node has its own set', () => {
    const model = tinySupernet('per-input');
    const fromInput0 = firstSepConv(changedBy(model, arcReading(0)));
    const fromInput1 = firstSepConv(changedBy(model, arcReading(1)));
    expect(fromInput0.length).toBeGreaterThan(0);
    expect(fromInput0.every((n) => n.includes('/from_0/'))).toBe(true);
    expect(fromInput1.every((n) => n.includes('/from_1/'))).toBe(true);
    model.dispose();
  });
});

describe('init scale and gradient clipping', () => {
  it('the init scale multiplies the He-normal weights drawn from the same seed', () => {
    const reference = tinySupernet('per-input');
    const scaled = tinySupernet('per-input', 0.5);
    const name = 'stem/w';
    const a = reference.state.get(name)!.dataSync();
    const b = scaled.state.get(name)!.dataSync();
    expect(a.length).toBeGreaterThan(0);
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(0.5 * a[i]!, 6);
    reference.dispose();
    scaled.dispose();
  });

  it('clipping scales gradients above the bound to it and leaves smaller ones alone', () => {
    const grads: [string, Float32Array][] = [
      ['a', Float32Array.from([3, 0])],
      ['b', Float32Array.from([0, 4])],
    ];
    const clipped = clipGlobalNorm(grads, 1);
    expect(Array.from(clipped[0]![1])).toEqual([expect.closeTo(0.6, 6), 0]);
    expect(Array.from(clipped[1]![1])).toEqual([0, expect.closeTo(0.8, 6)]);
    expect(Array.from(grads[0]![1])).toEqual([3, 0]);
    expect(clipGlobalNorm(grads, 5).map(([, g]) => Array.from(g))).toEqual([
      [3, 0],
      [0, 4],
    ]);
  });
});

describe('warm-up and fixed reward batches', () => {
  let base: SearchSettings;
  const withSchedule = (schedule: Partial<SearchSettings['schedule']>): SearchSettings => ({ ...base, schedule: { ...base.schedule, ...schedule } });
  const stateOf = (dir: string) => {
    const { seconds: _seconds, ...rest } = loadStore(join(dir, 'checkpoint')).meta.state as Record<string, unknown>;
    return rest;
  };
  const untimed = (dir: string) =>
    readHistory(join(dir, 'history.jsonl')).map((record) => {
      const { seconds: _s, ...rest } = record as unknown as Record<string, unknown>;
      delete rest.phaseSeconds;
      return rest;
    });

  beforeAll(() => {
    base = resolveSearchSettings(writeConfig(SPEC, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`), { preset: 'tiny', trial: {} }).settings;
  });

  it('warm-up epochs train the supernet on uniform architectures and leave the controller as it was', async () => {
    const settings = withSchedule({ epochs: 1, warmupEpochs: 1 });
    const dir = freshDir('warmup');
    await runSearch(dir, settings, false, quietIo());
    const initial = buildSearch(settings);
    const trained = buildSearch(settings);
    restoreSearch(dir, trained);
    expect(trained.controller.save().params).toEqual(initial.controller.save().params);
    expect(readRun(dir).trials).toHaveLength(0);
    const history = readHistory(join(dir, 'history.jsonl'));
    expect(history.filter((r) => r.type === 'update')).toHaveLength(0);
    expect(history).toEqual([expect.objectContaining({ type: 'epoch', reward: null, entropy: null, globalStep: initial.task.batchesPerEpoch })]);
    // The shared weights did train.
    const weights = (parts: typeof initial) => [...parts.model.state].filter(([n]) => !n.endsWith('/momentum')).map(([, v]) => Array.from(v.dataSync()));
    expect(weights(trained)).not.toEqual(weights(initial));
    for (const parts of [initial, trained]) {
      parts.model.dispose();
      parts.controller.dispose();
    }
  });

  it('a search stopped in the middle of its warm-up resumes to the uninterrupted run', async () => {
    const settings = withSchedule({ epochs: 2, warmupEpochs: 1 });
    const uninterrupted = freshDir('warmup-full');
    await runSearch(uninterrupted, settings, false, quietIo());
    const dir = freshDir('warmup-stop');
    const stopped = await runSearch(dir, settings, false, quietIo(stopAfter(1)));
    expect(stopped).toMatchObject({ finished: false, epochs: 0 });
    expect(loadStore(join(dir, 'checkpoint')).meta.state).toMatchObject({ phase: 'child', phaseDone: 1 });
    await runSearch(dir, settings, true, quietIo());
    expect(readRun(dir).trials.map(({ parameters, metric }) => ({ parameters, metric }))).toEqual(
      readRun(uninterrupted).trials.map(({ parameters, metric }) => ({ parameters, metric })),
    );
    expect(readRun(uninterrupted).trials.length).toBeGreaterThan(0);
    expect(untimed(dir)).toEqual(untimed(uninterrupted));
    expect(stateOf(dir)).toEqual(stateOf(uninterrupted));
  });

  it('fixed reward batches: every sample of one update is scored on that update’s K batches', async () => {
    const k = 2;
    const settings = withSchedule({ epochs: 1, rewardBatches: k });
    const dir = freshDir('reward-batches');
    await runSearch(dir, settings, false, quietIo());
    // The controller phase does not train, so the weights it scored with are the checkpoint's.
    const parts = buildSearch(settings);
    restoreSearch(dir, parts);
    const trials = readRun(dir).trials;
    const perUpdate = settings.controller.numAggregate;
    expect(trials).toHaveLength(settings.schedule.controllerSteps * perUpdate);
    trials.forEach((trial, i) => {
      const update = Math.floor(i / perUpdate);
      const rescored = parts.task.score(parts.model, fromParams(SPEC, trial.parameters), update * k, k);
      expect(trial.metric).toBe(rescored.reward);
      // The same architecture anywhere in that update would score the same: a pure function of the batches.
      const again = parts.task.score(parts.model, fromParams(SPEC, trial.parameters), update * k, k);
      expect(again.reward).toBe(rescored.reward);
    });
    parts.model.dispose();
    parts.controller.dispose();
  });
});
