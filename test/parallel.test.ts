/*
 * Data parallelism over worker threads (trial/parallel.ts) on tiny models and Fashion-MNIST
 * at 14×14. Every model here has batch norm, so a 2-worker step is compared not with one process
 * on the whole batch (ghost BN makes those differ) but with one process doing by hand what the
 * workers do: the gradients of each half-batch on a replica with that worker's random stream,
 * their shard-weighted mean, the same mean of the moving statistics, one update. A 1-worker model
 * must equal the plain model exactly. The worker is the compiled dist/trial/parallel-worker.js
 * (`npm test` runs tsc first).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { Genotype, MacroGenotype, MicroGenotype, RnnGenotype } from '../search-spaces/genotype.js';
import type { Batch } from '../trial/model.js';
import { DEFAULT_SPECS, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend, type BackendName } from '../trial/backend.js';
import { DataParallelModel, parallelize, shardSizes, weightedAverage } from '../trial/parallel.js';
import { buildFromRecipe, pack, replicaRandomState, type ModelRecipe, type Packed, type ReplicaModel } from '../trial/parallel-recipe.js';
import { Random } from '../common/random.js';
import { assignModelState, readModelState } from '../trial/store-tf.js';
import { batchAt, fashionTiny, type TinyImages } from './fashion-tiny.js';
import { randomArc } from './random-arch.js';

const BATCH = 16;
const LR = 0.05;
const MICRO: ModelRecipe = {
  kind: 'micro-supernet',
  config: { inputShape: [14, 14, 1], channels: 8, layers: 3, nodes: 3, seed: 1 },
};
const MACRO: ModelRecipe = { kind: 'macro-supernet', config: { inputShape: [14, 14, 1], channels: 8, layers: 4, seed: 1 } };
const RNN: ModelRecipe = { kind: 'rnn-supernet', config: { vocabSize: 40, hiddenSize: 8, nodes: 4, seed: 1 } };
const rnnSpec: SpaceSpec = { ...DEFAULT_SPECS.rnn, nodes: 4 } as SpaceSpec;
const microSpec: SpaceSpec = { ...DEFAULT_SPECS.micro, nodes: 3 } as SpaceSpec;
const macroSpec: SpaceSpec = { ...DEFAULT_SPECS.macro, layers: 4 } as SpaceSpec;

let data: TinyImages;

beforeAll(async () => {
  await setupBackend((process.env['TEST_BACKEND'] as BackendName | undefined) ?? 'wasm');
  data = fashionTiny(16);
});

afterAll(() => tf.dispose([data.x, data.y]));

function maxDiff(a: ReadonlyMap<string, ArrayLike<number>>, b: ReadonlyMap<string, ArrayLike<number>>): number {
  expect([...b.keys()]).toEqual([...a.keys()]);
  let diff = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
  }
  return diff;
}

const hostState = (model: ReplicaModel): Map<string, Float32Array | Int32Array> =>
  new Map([...model.state].map(([name, v]) => [name, v.dataSync<'float32' | 'int32'>().slice()]));

/** The main-thread copy of a data-parallel model's state, on the host. */
const mainCopy = (dp: DataParallelModel<never>): Map<string, Float32Array | Int32Array> =>
  new Map([...dp.state].map(([name, v]) => [name, v.dataSync<'float32' | 'int32'>().slice()]));

/**
 * Runs `body` with a data-parallel model of `recipe` over two workers and by-hand replicas on
 * worker 0's and worker 1's random streams; disposes all three after.
 */
function withTwoWorkers<G extends Genotype>(recipe: ModelRecipe, body: (models: { dp: DataParallelModel<G>; a: ReplicaModel<G>; b: ReplicaModel<G> }) => void): void {
  const dp = new DataParallelModel<G>(recipe, { workers: 2, replyTimeoutMs: 60_000 });
  const a = buildFromRecipe(recipe);
  const b = buildFromRecipe(recipe);
  b.random.restore(replicaRandomState(recipe.config.seed!, 1, b.random.state));
  try {
    body({ dp, a, b });
  } finally {
    a.dispose();
    b.dispose();
    dp.dispose();
  }
}

/** A training window of `rows` random token rows of `steps` tokens over the RNN recipe's vocabulary: x and y (x shifted by one). */
function textWindow(random: Random, rows: number, steps: number): Batch {
  const ids = tf.tensor2d(Int32Array.from({ length: rows * (steps + 1) }, () => random.int(RNN.config.vocabSize!)), [rows, steps + 1], 'int32');
  const batch = { x: tf.slice(ids, [0, 0], [-1, steps]), y: tf.slice(ids, [0, 1], [-1, steps]) };
  ids.dispose();
  return batch;
}

/** Names of the state a step assigns rather than trains: moving statistics, step counters. */
const movingNames = (model: ReplicaModel): string[] =>
  [...model.state].filter(([n, v]) => !(v as tf.Variable).trainable && !n.endsWith('/momentum')).map(([n]) => n);

/**
 * One two-worker step done by hand on two replicas (the second on worker 1's random stream): the
 * gradients of each half, their shard-weighted mean, the same mean of the moving statistics the
 * step changed, one update on both. Returns the loss the data-parallel step should report.
 */
function stepByHand<G extends Genotype>(replicas: [ReplicaModel<G>, ReplicaModel<G>], g: G, batch: Batch, lr: number): number {
  const [a, b] = replicas;
  const [h0, h1] = halves(batch.x, batch.y) as [Half, Half];
  const w = [h0.rows / batch.x.shape[0]!, h1.rows / batch.x.shape[0]!];
  const names = movingNames(a);
  const before = names.map((n) => a.state.get(n)!.dataSync().slice());
  const r0 = a.computeGradients(g, h0);
  const r1 = b.computeGradients(g, h1);
  const grads = weightedAverage([pack(r0.grads), pack(r1.grads)], w);
  const changed = names.filter((n, i) => a.state.get(n)!.dataSync().some((v, j) => v !== before[i]![j]));
  const moving = weightedAverage(
    [a, b].map((m) => pack(changed.map((n) => [n, m.state.get(n)!.dataSync()] as const))),
    w,
  );
  for (const m of [a, b]) {
    m.applyGradients(new Map(unpackAll(grads)), lr, g);
    for (const [n, values] of unpackAll(moving)) {
      const v = m.state.get(n) as tf.Variable;
      const t = tf.tensor(values, v.shape);
      v.assign(t);
      t.dispose();
    }
  }
  tf.dispose([h0.x, h0.y, h1.x, h1.y]);
  return w[0]! * r0.stats.loss + w[1]! * r1.stats.loss;
}

interface Half {
  x: tf.Tensor;
  y: tf.Tensor;
  rows: number;
}

/** Halves of a batch, as DataParallelModel cuts them. */
function halves(x: tf.Tensor, y: tf.Tensor): Half[] {
  const [a, b] = shardSizes(x.shape[0]!, 2) as [number, number];
  return [
    { x: tf.slice(x, 0, a), y: tf.slice(y, 0, a), rows: a },
    { x: tf.slice(x, a, b), y: tf.slice(y, a, b), rows: b },
  ];
}

describe('weightedAverage', () => {
  const values = (seed: number, n: number): Float32Array => {
    const random = new Random(seed);
    return Float32Array.from({ length: n }, () => random.next() * 2 - 1);
  };
  /** Σ_k w_k·x_k in float64, rounded once to float32: what every path must give. */
  const expected = (parts: Float32Array[], w: number[]): Float32Array =>
    Float32Array.from(parts[0]!, (_, i) => parts.reduce((sum, p, k) => sum + w[k]! * p[i]!, 0));

  it.each([2, 3])('averages %i shards with the same names in float64, rounded once', (count) => {
    const data = Array.from({ length: count }, (_, k) => [values(10 + k, 5), values(20 + k, 3)] as const);
    const w = count === 2 ? [0.3, 0.7] : [0.2, 0.5, 0.3];
    const mean = weightedAverage(
      data.map(([a, b]) => pack([['a', a], ['b', b]])),
      w,
    );
    expect(mean.names).toEqual(['a', 'b']);
    expect([...mean.data]).toEqual([...expected(data.map(([a]) => a), w), ...expected(data.map(([, b]) => b), w)]);
  });

  it('counts a name a shard lacks as zero there', () => {
    const [a, b] = [values(1, 4), values(2, 4)];
    const mean = weightedAverage([pack([['a', a]]), pack([['b', b]])], [0.25, 0.75]);
    expect(mean.names).toEqual(['a', 'b']);
    expect([...mean.data]).toEqual([...a.map((x) => Math.fround(0.25 * x)), ...b.map((x) => Math.fround(0.75 * x))]);
  });
});

describe('DataParallelModel', () => {
  it('with one worker equals the plain model bit for bit (micro supernet)', () => {
    const g = randomArc<MicroGenotype>(microSpec, 3);
    const plain = buildFromRecipe(MICRO);
    const dp = new DataParallelModel<MicroGenotype>(MICRO, { workers: 1, replyTimeoutMs: 60_000 });
    try {
      expect(maxDiff(hostState(plain), mainCopy(dp))).toBe(0);
      for (let k = 0; k < 3; k++) {
        const batch = batchAt(data, k, BATCH);
        const a = plain.trainStep(g, batch, LR);
        const b = dp.trainStep(g, batch, LR);
        expect(b.loss).toBe(a.loss);
        tf.dispose([batch.x, batch.y]);
      }
      const batch = batchAt(data, 5, BATCH);
      expect(dp.evaluate(g, batch)).toEqual(plain.evaluate(g, batch));
      tf.dispose([batch.x, batch.y]);
      expect(maxDiff(hostState(plain), mainCopy(dp))).toBe(0);
    } finally {
      plain.dispose();
      dp.dispose();
    }
  });

  it('with two workers: replicas stay identical and match averaging half-batch gradients by hand (macro supernet, moving BN stats)', () => {
    const g = randomArc<MacroGenotype>(macroSpec, 3);
    withTwoWorkers<MacroGenotype>(MACRO, ({ dp, a, b }) => {
      expect(movingNames(a).some((n) => n.endsWith('moving_mean'))).toBe(true);
      for (let k = 0; k < 4; k++) {
        const batch = batchAt(data, k, BATCH);
        const stats = dp.trainStep(g, batch, LR);
        expect(stats.loss).toBeCloseTo(stepByHand([a, b], g, batch, LR), 5);
        tf.dispose([batch.x, batch.y]);
      }
      const [s0, s1] = dp.replicaStates();
      expect(maxDiff(s0!, s1!)).toBe(0);
      // Same kernels on the same data in another thread: exactly equal.
      expect(maxDiff(s0!, hostState(a))).toBe(0);
      // The main-thread copy follows the replicas.
      expect(maxDiff(s0!, mainCopy(dp))).toBe(0);
    });
  });

  it('scores whole batches, several at once and in order: each score is the replica\'s own evaluate (micro supernet: batch statistics)', () => {
    withTwoWorkers<MicroGenotype>(MICRO, ({ dp, a, b }) => {
      const g = randomArc<MicroGenotype>(microSpec, 5);
      for (let k = 0; k < 2; k++) {
        const batch = batchAt(data, k, BATCH);
        dp.trainStep(g, batch, LR);
        stepByHand([a, b], g, batch, LR);
        tf.dispose([batch.x, batch.y]);
      }
      const jobs = () => [0, 1, 2, 3, 4].map((k) => ({ g: randomArc<MicroGenotype>(microSpec, 10 + k), batch: batchAt(data, 2 + k, BATCH) }));
      const expected = jobs().map(({ g: arc, batch }) => {
        const stats = a.evaluate(arc, batch);
        tf.dispose([batch.x, batch.y]);
        return stats;
      });
      expect(new Set(expected.map((s) => s.loss)).size).toBe(5);
      const toScore = jobs();
      const tensors = tf.memory().numTensors;
      // Not sharded, so not ghost batch statistics: exactly the whole batch's evaluation.
      expect(dp.evaluateAll(toScore)).toEqual(expected);
      expect(tf.memory().numTensors).toBe(tensors - 2 * toScore.length);
      const [first] = jobs();
      expect(dp.evaluate(first!.g, first!.batch)).toEqual(expected[0]);
      tf.dispose([first!.batch.x, first!.batch.y]);
    });
  });

  it('RNN supernet, two workers: each replica carries its rows\' hidden state; equals averaging half-batch gradients by hand, resets included', () => {
    const g = randomArc<RnnGenotype>(rnnSpec, 3);
    let tensorsAfterFirst: number | undefined;
    const tokens = new Random(7);
    withTwoWorkers<RnnGenotype>(RNN, ({ dp, a, b }) => {
      expect(movingNames(a).length).toBe(2 * (4 + 1));
      for (let k = 0; k < 4; k++) {
        if (k === 2) for (const m of [dp, a, b]) m.resetState!();
        const batch = textWindow(tokens, 5, 6);
        const stats = dp.trainStep(g, batch, 20);
        expect(stats.accuracy).toBeUndefined();
        expect(stats.loss).toBeCloseTo(stepByHand([a, b], g, batch, 20), 5);
        tf.dispose([batch.x, batch.y]);
        // computeGradients and applyGradients keep no tensor beyond the carried state.
        tensorsAfterFirst ??= tf.memory().numTensors;
        expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
      }
      const [s0, s1] = dp.replicaStates();
      expect(maxDiff(s0!, s1!)).toBe(0);
      expect(maxDiff(s0!, hostState(a))).toBe(0);
    });
  });

  it('RNN supernet, one worker: equals the plain model bit for bit, carried state and evaluation included', () => {
    const g = randomArc<RnnGenotype>(rnnSpec, 4);
    const plain = buildFromRecipe(RNN);
    const dp = new DataParallelModel<RnnGenotype>(RNN, { workers: 1, replyTimeoutMs: 60_000 });
    const tokens = new Random(8);
    try {
      for (let k = 0; k < 3; k++) {
        const batch = textWindow(tokens, 4, 5);
        expect(dp.trainStep(g, batch, 20).loss).toBe(plain.trainStep(g, batch, 20).loss);
        tf.dispose([batch.x, batch.y]);
      }
      const batch = textWindow(tokens, 4, 5);
      expect(dp.evaluate(g, batch)).toEqual(plain.evaluate(g, batch));
      tf.dispose([batch.x, batch.y]);
      expect(maxDiff(hostState(plain), mainCopy(dp))).toBe(0);
    } finally {
      plain.dispose();
      dp.dispose();
    }
  });

  it('learns; assigned state reaches every replica; close leaves no worker', async () => {
    const g = randomArc<MicroGenotype>(microSpec, 4);
    const dp = new DataParallelModel<MicroGenotype>(MICRO, { workers: 2, replyTimeoutMs: 60_000 });
    const losses: number[] = [];
    for (let k = 0; k < 24; k++) {
      const batch = batchAt(data, k % 4, BATCH);
      losses.push(dp.trainStep(g, batch, LR).loss);
      tf.dispose([batch.x, batch.y]);
    }
    const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;
    expect(mean(losses.slice(-4))).toBeLessThan(0.8 * mean(losses.slice(0, 4)));
    const [r0, r1] = dp.replicaStates();
    expect(maxDiff(r0!, r1!)).toBe(0);

    // Store round trip: what assignModelState writes into `state` is broadcast before the next call.
    const saved = readModelState(dp.state);
    const zeroed = new Map([...saved].map(([n, t]) => [n, { shape: t.shape, data: new Float32Array(t.data.length) }]));
    assignModelState(dp.state, zeroed as never);
    for (const replica of dp.replicaStates()) for (const values of replica.values()) expect(values.every((v) => v === 0)).toBe(true);
    assignModelState(dp.state, saved);
    expect(maxDiff(dp.replicaStates()[1]!, r0!)).toBe(0);

    await dp.close();
    expect(() => dp.evaluate(g, batchAt(data, 0, BATCH))).toThrow(/disposed/);
  });

  it('parallelize wraps a CNN model, starting from its state, and leaves other worker counts alone', async () => {
    const plain = buildFromRecipe(MICRO);
    expect(parallelize(plain, 1)).toBe(plain);
    const initial = hostState(plain);
    const dp = parallelize(plain, 2) as DataParallelModel<never>;
    expect(dp).toBeInstanceOf(DataParallelModel);
    expect(plain.state.size).toBe(0); // disposed
    for (const replica of dp.replicaStates()) expect(maxDiff(initial, replica)).toBe(0);
    await dp.close();
  });

  it('reports a worker error with its message, then refuses to go on', async () => {
    const g = randomArc<MicroGenotype>(microSpec, 5);
    const dp = new DataParallelModel<MicroGenotype>(MICRO, { workers: 2, replyTimeoutMs: 60_000 });
    const batch = batchAt(data, 0, BATCH);
    dp.injectFailure(1, 'simulated failure');
    expect(() => dp.trainStep(g, batch, LR)).toThrow(/worker 1: simulated failure/);
    expect(() => dp.evaluate(g, batch)).toThrow(/failed earlier/);
    await dp.close();

    const bad = new DataParallelModel<MicroGenotype>(MICRO, { workers: 2, replyTimeoutMs: 60_000 });
    const wrong = { ...g, normal: g.normal.slice(0, 1) };
    expect(() => bad.trainStep(wrong, batch, LR)).toThrow(/worker 0: micro cell has 1 nodes/);
    await bad.close();
    tf.dispose([batch.x, batch.y]);

    // A model the worker cannot build: the constructor throws the worker's message.
    const unbuildable: ModelRecipe = { kind: 'micro-fixed', genotype: { ...g, reduce: g.reduce.slice(0, 1) }, config: MICRO.config };
    expect(() => new DataParallelModel(unbuildable, { workers: 1, replyTimeoutMs: 60_000 })).toThrow(/worker 0: micro cell has 1 nodes/);
    // A worker module that does not load (e.g. dist/ being rewritten by a concurrent build): an error, not a hang.
    const missing = new URL('file:///nonexistent/parallel-worker.js');
    expect(() => new DataParallelModel(MICRO, { workers: 2, workerModule: missing, replyTimeoutMs: 60_000 })).toThrow(/worker 0: cannot load/);
  });
});

/** Name and values of every tensor of a packed buffer. */
function unpackAll(packed: Packed): [string, Float32Array][] {
  return packed.names.map((n, i) => [n, packed.data.subarray(sum(packed.lengths, i), sum(packed.lengths, i + 1))]);
}

function sum(xs: readonly number[], end: number): number {
  let total = 0;
  for (let i = 0; i < end; i++) total += xs[i]!;
  return total;
}
