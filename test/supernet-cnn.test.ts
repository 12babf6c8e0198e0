/*
 * The CNN supernets (trial/supernet/{macro,micro}.ts) on tiny configurations and a tiny real
 * dataset (Fashion-MNIST at 14×14): a seeded random architecture learns; one step changes exactly
 * the weights, BN statistics and optimizer slots of the sampled subgraph; the state names are
 * unique and stable; evaluation changes nothing; no tensor leaks across steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { MACRO_OPS, MICRO_OPS, microLooseEnds, type MacroGenotype, type MicroGenotype } from '../search-spaces/genotype.js';
import { DEFAULT_SPECS, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend, type BackendName } from '../trial/backend.js';
import type { TrainableModel } from '../trial/model.js';
import { macroPoolLayers, microReductionCells } from '../trial/cnn.js';
import { MacroSupernet, type MacroSupernetConfig } from '../trial/supernet/macro.js';
import { MicroSupernet, type MicroSupernetConfig } from '../trial/supernet/micro.js';
import { assignModelState, readModelState } from '../trial/store-tf.js';
import { batchAt, fashionTiny, type TinyImages } from './fashion-tiny.js';
import { randomArc } from './random-arch.js';

const BATCH = 16;
const LR = 0.05;
const MACRO: Partial<MacroSupernetConfig> = { inputShape: [14, 14, 1], channels: 8, layers: 4, seed: 1 };
// 5 cells (N R N R N): 14×14 → 7×7 → 4×4, aux head after cell 4.
const MICRO: Partial<MicroSupernetConfig> = { inputShape: [14, 14, 1], channels: 8, layers: 3, nodes: 3, seed: 1 };
const macroSpec: SpaceSpec = { ...DEFAULT_SPECS.macro, layers: 4 } as SpaceSpec;
const microSpec: SpaceSpec = { ...DEFAULT_SPECS.micro, nodes: 3 } as SpaceSpec;

let data: TinyImages;

beforeAll(async () => {
  // wasm by default (with the project's training kernels); TEST_BACKEND=cpu checks the same on the reference backend.
  await setupBackend((process.env['TEST_BACKEND'] as BackendName | undefined) ?? 'wasm');
  data = fashionTiny(16);
});

afterAll(() => tf.dispose([data.x, data.y]));

const snapshot = (model: TrainableModel<never>): Map<string, Float32Array> =>
  new Map([...model.state].map(([name, v]) => [name, Float32Array.from(v.dataSync())]));

function changedNames(model: TrainableModel<never>, before: Map<string, Float32Array>): Set<string> {
  const changed = new Set<string>();
  for (const [name, v] of model.state) {
    const now = v.dataSync();
    if (now.some((value, i) => !Object.is(value, before.get(name)![i]))) changed.add(name);
  }
  return changed;
}

/** Mean training loss of the first and last `window` of `steps` steps of one architecture. */
function lossCurve<G>(model: TrainableModel<G>, g: G, steps: number, window: number): [number, number] {
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    const batch = batchAt(data, k, BATCH);
    losses.push(model.trainStep(g, batch, LR).loss);
    tf.dispose([batch.x, batch.y]);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return [mean(losses.slice(0, window)), mean(losses.slice(-window))];
}

/** Names of the state, and the tensor count after the 2nd and 3rd step and after an evaluation. */
function leakCheck<G>(model: TrainableModel<G>, g: G): number[] {
  const batch = batchAt(data, 0, BATCH);
  const counts: number[] = [];
  for (let k = 0; k < 3; k++) {
    model.trainStep(g, batch, LR);
    if (k > 0) counts.push(tf.memory().numTensors);
  }
  model.evaluate(g, batch);
  counts.push(tf.memory().numTensors);
  tf.dispose([batch.x, batch.y]);
  return counts;
}

function checkStateNames(make: () => TrainableModel<never>): void {
  const [a, b] = [make(), make()];
  const names = [...a.state.keys()];
  expect([...b.state.keys()]).toEqual(names);
  expect(new Set(a.state.values()).size).toBe(names.length);
  for (const name of names) expect(name).toMatch(/^[a-z0-9_]+(\/[a-z0-9_]+)*$/);
  for (const [name, v] of a.state) if (v.trainable) expect(a.state.has(`${name}/momentum`)).toBe(true);
  a.dispose();
  b.dispose();
}

describe('macro supernet', () => {
  const g = randomArc<MacroGenotype>(macroSpec, 3);

  it('a random architecture learns on tiny Fashion-MNIST-format images', () => {
    const model = new MacroSupernet(MACRO);
    const [first, last] = lossCurve(model, g, 40, 8);
    expect(last).toBeLessThan(0.8 * first);
    model.dispose();
  });

  it('one step changes exactly the sampled ops, the reductions read later, and the shared layers', () => {
    const model = new MacroSupernet(MACRO);
    const before = snapshot(model);
    const batch = batchAt(data, 1, BATCH);
    model.trainStep(g, batch, LR);
    const changed = changedNames(model, before);
    // lastRead[j]: the last layer reading history entry j = [stem, out_0, …] (the classifier reads entry L).
    const L = g.layers.length;
    const lastRead = Array.from({ length: L + 1 }, (_, j) => (j === L ? L : j));
    g.layers.forEach((layer, i) => layer.skips.forEach((bit, j) => bit && (lastRead[j] = Math.max(lastRead[j]!, i))));
    expect(macroPoolLayers(L)).toEqual([0, 1]);
    let opVariables = 0;
    for (const name of model.state.keys()) {
      const op = /^layer_(\d+)\/([a-z0-9]+)\//.exec(name);
      const pool = /^pool_at_(\d+)\/from_(\d+)\//.exec(name);
      let expected = true;
      if (op && (MACRO_OPS as readonly string[]).includes(op[2]!)) {
        expected = g.layers[Number(op[1])]!.op === op[2];
        opVariables++;
      } else if (pool) expected = lastRead[Number(pool[2])]! > Number(pool[1]);
      expect({ name, changed: changed.has(name) }).toEqual({ name, changed: expected });
    }
    expect(opVariables).toBeGreaterThan(100);
    tf.dispose([batch.x, batch.y]);
    model.dispose();
  });

  it('evaluation changes no state; steps leak no tensors; state names are unique and stable', () => {
    const model = new MacroSupernet(MACRO);
    const before = snapshot(model);
    const batch = batchAt(data, 2, BATCH);
    const stats = model.evaluate(g, batch);
    expect(stats.accuracy).toBeGreaterThanOrEqual(0);
    expect(changedNames(model, before).size).toBe(0);
    tf.dispose([batch.x, batch.y]);
    const counts = leakCheck(model, g);
    expect(new Set(counts).size).toBe(1);
    model.dispose();
    checkStateNames(() => new MacroSupernet(MACRO) as TrainableModel<never>);
  });
});

describe('micro supernet', () => {
  const g = randomArc<MicroGenotype>(microSpec, 5);
  const reductions = microReductionCells(3);

  it('the test architecture mixes weighted and weight-free ops', () => {
    const ops = [...g.normal, ...g.reduce].flatMap((n) => n.ops);
    expect(ops.some((op) => op.startsWith('sepconv'))).toBe(true);
    expect(ops.some((op) => !op.startsWith('sepconv'))).toBe(true);
  });

  it('a random architecture learns on tiny Fashion-MNIST-format images (with the aux head)', () => {
    const model = new MicroSupernet(MICRO);
    expect([...model.state.keys()].some((name) => name.startsWith('aux_head/'))).toBe(true);
    const [first, last] = lossCurve(model, g, 40, 8);
    expect(last).toBeLessThan(0.8 * first);
    model.dispose();
  });

  it('one step changes exactly the ops on the sampled (input, op) pairs, the loose-end blocks, and the shared layers', () => {
    const model = new MicroSupernet(MICRO);
    const before = snapshot(model);
    const batch = batchAt(data, 1, BATCH);
    model.trainStep(g, batch, LR);
    const changed = changedNames(model, before);
    let opVariables = 0;
    for (const name of model.state.keys()) {
      const op = /^cell_(\d+)\/node_(\d+)\/(x|y)\/([a-z0-9]+)\/from_(\d+)\//.exec(name);
      const output = /^cell_(\d+)\/output\/from_(\d+)\//.exec(name);
      const arcOf = (cell: string) => (reductions.includes(Number(cell)) ? g.reduce : g.normal);
      let expected = true;
      if (op) {
        const node = arcOf(op[1]!)[Number(op[2]) - 2]!;
        const k = op[3] === 'x' ? 0 : 1;
        expected = node.inputs[k] === Number(op[5]) && node.ops[k] === op[4];
        expect(MICRO_OPS).toContain(op[4]);
        opVariables++;
      } else if (output) expected = microLooseEnds(arcOf(output[1]!)).includes(Number(output[2]));
      expect({ name, changed: changed.has(name) }).toEqual({ name, changed: expected });
    }
    expect(opVariables).toBeGreaterThan(1000);
    tf.dispose([batch.x, batch.y]);
    model.dispose();
  });

  it('evaluation changes no state; steps leak no tensors; state names are unique and stable', () => {
    const model = new MicroSupernet(MICRO);
    const before = snapshot(model);
    const batch = batchAt(data, 2, BATCH);
    model.evaluate(g, batch);
    expect(changedNames(model, before).size).toBe(0);
    tf.dispose([batch.x, batch.y]);
    const counts = leakCheck(model, g);
    expect(new Set(counts).size).toBe(1);
    model.dispose();
    checkStateNames(() => new MicroSupernet(MICRO) as TrainableModel<never>);
  });
});

describe('a supernet built from stored weights (a trial loading the store)', () => {
  it('equals one built by the seeded init and then assigned, down to the next training step', () => {
    const g = randomArc<MicroGenotype>(microSpec, 3);
    const trained = new MicroSupernet(MICRO);
    lossCurve(trained, g, 2, 1);
    const stored = readModelState(trained.state);

    const assigned = new MicroSupernet({ ...MICRO, seed: 2 });
    assignModelState(assigned.state, stored);
    const tensorsBefore = tf.memory().numTensors;
    const built = new MicroSupernet({ ...MICRO, seed: 2, initialState: stored });
    // Its variables reach the backend as passes read them, none at build time.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(snapshot(built as TrainableModel<never>)).toEqual(snapshot(assigned as TrainableModel<never>));
    // Dropout and drop-path draw from a stream split off before the init, so skipping it changes
    // nothing. The first step uploads what it reads during the pass, and all of it gets its gradient.
    const batch = batchAt(data, 0, BATCH);
    expect(built.trainStep(g, batch, LR)).toEqual(assigned.trainStep(g, batch, LR));
    tf.dispose([batch.x, batch.y]);
    expect(snapshot(built as TrainableModel<never>)).toEqual(snapshot(assigned as TrainableModel<never>));
    const uploaded = tf.memory().numTensors - tensorsBefore;
    expect(uploaded).toBeGreaterThan(0);
    expect(uploaded).toBeLessThan([...built.state.keys()].filter((name) => !name.endsWith('/momentum')).length / 2);
    [trained, assigned, built].forEach((model) => model.dispose());
  });

  it('names the tensor that is missing or of another shape', () => {
    const model = new MicroSupernet(MICRO);
    const stored = new Map(readModelState(model.state));
    const [name, tensor] = [...stored][0]!;
    stored.set(name, { shape: [tensor.data.length], data: tensor.data });
    expect(() => new MicroSupernet({ ...MICRO, initialState: stored })).toThrow(
      `cannot build the model: tensor "${name}" has shape [${tensor.data.length}] in the weights to start from, expected [${tensor.shape}]`,
    );
    stored.delete(name);
    expect(() => new MicroSupernet({ ...MICRO, initialState: stored })).toThrow(`tensor "${name}" is missing from the weights to start from`);
    model.dispose();
  });
});
