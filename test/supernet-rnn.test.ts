/*
 * The RNN supernet (trial/supernet/rnn.ts) and the shared cell (trial/rnn-cell.ts): loss and
 * hand-written gradients against a float64 reference, with and without E's batch norms; learning
 * on the opening of the KJV corpus; weight sharing by (node, predecessor, activation) block; the
 * carried hidden state; no leaked tensors. Runs on wasm with the project's kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Random } from '../common/random.js';
import { RNN_ACTIVATIONS, rnnLooseEnds, type RnnGenotype, type RnnNode } from '../search-spaces/genotype.js';
import { TextBatcher } from '../trial/data/index.js';
import type { Batch } from '../trial/model.js';
import { cellPlan, readWindow, sampleMasks, windowGradients, windowLoss, type CellPlan, type TextWindow } from '../trial/rnn-cell.js';
import { RnnSupernet, rnnSupernetShapes } from '../trial/supernet/rnn.js';
import { kjvWindows } from './kjv-tiny.js';

function randomGenotype(random: Random, nodes: number): RnnGenotype {
  return {
    space: 'rnn',
    nodes: Array.from({ length: nodes }, (_, j): RnnNode => ({
      prev: j === 0 ? -1 : random.int(j),
      act: RNN_ACTIVATIONS[random.int(RNN_ACTIVATIONS.length)]!,
    })),
  };
}

const genotype = (nodes: [number, RnnNode['act']][]): RnnGenotype => ({
  space: 'rnn',
  nodes: nodes.map(([prev, act]) => ({ prev, act })),
});

/** Every activation, nodes with two children, three loose ends. */
const BRANCHY = genotype([
  [-1, 'tanh'],
  [0, 'relu'],
  [0, 'identity'],
  [1, 'sigmoid'],
  [3, 'tanh'],
  [1, 'relu'],
]);
/** Two siblings of one activation (evaluation applies it to both at once). */
const TWINS = genotype([
  [-1, 'tanh'],
  [0, 'relu'],
  [0, 'relu'],
  [1, 'identity'],
]);
/** A chain: one loose end. */
const CHAIN = genotype([
  [-1, 'sigmoid'],
  [0, 'tanh'],
  [1, 'identity'],
]);

const ACT64: Record<RnnNode['act'], (x: number) => number> = {
  tanh: Math.tanh,
  relu: (x) => Math.max(0, x),
  identity: (x) => x,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
};

/** A batch norm's tensors in float64: scale, offset, moving mean, moving variance. */
interface Norm64 {
  scale: Float64Array;
  offset: Float64Array;
  movingMean: Float64Array;
  movingVariance: Float64Array;
}

/**
 * Batch norm of x [B, C] in place (E ptb_ops.batch_norm, ε = 1): with the batch's statistics, which
 * it returns, or with the moving ones.
 */
function norm64(x: Float64Array, B: number, bn: Norm64, useBatch: boolean): { mean: number[]; variance: number[] } {
  const C = x.length / B;
  const stats = { mean: [] as number[], variance: [] as number[] };
  for (let c = 0; c < C; c++) {
    let mean = bn.movingMean[c]!;
    let variance = bn.movingVariance[c]!;
    if (useBatch) {
      mean = 0;
      for (let b = 0; b < B; b++) mean += x[b * C + c]! / B;
      variance = 0;
      for (let b = 0; b < B; b++) variance += (x[b * C + c]! - mean) ** 2 / B;
    }
    stats.mean.push(mean);
    stats.variance.push(variance);
    for (let b = 0; b < B; b++) x[b * C + c] = (bn.scale[c]! * (x[b * C + c]! - mean)) / Math.sqrt(variance + 1) + bn.offset[c]!;
  }
  return stats;
}

/**
 * The cell and its loss (ENAS.md §1c) in float64 scalar loops, as the formulas read:
 * [x⊙m_x, h⊙m_h]·W_prev, batch norm, gate-weighted sum σ(c̃)·f(h̃) + (1 − σ(c̃))·s_p, mean of the
 * loose ends, batch norm, logits h·Eᵀ, log-sum-exp cross-entropy, plus the slowness term. An
 * independent reference: no tfjs, no shared code beyond the genotype.
 */
function referenceForward(
  plan: CellPlan,
  embedding: Float64Array,
  weights: Float64Array[],
  window: TextWindow,
  initial: Float64Array,
  masks: { input?: Float32Array; hidden?: Float32Array; output?: Float32Array },
  H: number,
  slowness: number,
  norms?: { layers: Norm64[]; useBatch: boolean },
): { loss: number; stats: { mean: number[]; variance: number[] }[][] } {
  const { batchSize: B, steps: T, inputs, targets } = window;
  const V = embedding.length / H;
  const N = B * T;
  const stats: { mean: number[]; variance: number[] }[][] = plan.prev.map(() => []);
  stats.push([]);
  const normalise = (layer: number, x: Float64Array): void => {
    if (norms) stats[layer]!.push(norm64(x, B, norms.layers[layer]!, norms.useBatch));
  };
  const mask = (m: Float32Array | undefined, i: number): number => (m ? m[i]! : 1);
  const x = new Float64Array(N * H);
  for (let n = 0; n < N; n++) for (let i = 0; i < H; i++) x[n * H + i] = embedding[inputs[n]! * H + i]! * mask(masks.input, n * H + i);
  const outputs = new Float64Array(N * H);
  let h = initial;
  for (let t = 0; t < T; t++) {
    const s: Float64Array[] = [];
    plan.prev.forEach((p, j) => {
      const sp = j === 0 ? h : s[p]!;
      const pre = new Float64Array(B * 2 * H);
      for (let b = 0; b < B; b++)
        for (let k = 0; k < 2 * H; k++)
          for (let i = 0; i < H; i++) {
            if (j === 0) pre[b * 2 * H + k]! += x[(t * B + b) * H + i]! * weights[0]![i * 2 * H + k]!;
            const row = j === 0 ? H + i : i;
            pre[b * 2 * H + k]! += sp[b * H + i]! * mask(masks.hidden, b * H + i) * weights[j]![row * 2 * H + k]!;
          }
      normalise(j, pre);
      const out = new Float64Array(B * H);
      for (let b = 0; b < B; b++)
        for (let k = 0; k < H; k++) {
          const g = 1 / (1 + Math.exp(-pre[b * 2 * H + H + k]!));
          out[b * H + k] = g * ACT64[plan.act[j]!](pre[b * 2 * H + k]!) + (1 - g) * sp[b * H + k]!;
        }
      s[j] = out;
    });
    h = new Float64Array(B * H);
    for (const e of plan.looseEnds) for (let i = 0; i < B * H; i++) h[i]! += s[e]![i]! / plan.looseEnds.length;
    normalise(plan.prev.length, h);
    outputs.set(h, t * B * H);
  }
  let ce = 0;
  for (let n = 0; n < N; n++) {
    const logits = Array.from({ length: V }, (_, v) => {
      let z = 0;
      for (let i = 0; i < H; i++) z += outputs[n * H + i]! * mask(masks.output, n * H + i) * embedding[v * H + i]!;
      return z;
    });
    const max = Math.max(...logits);
    ce += max + Math.log(logits.reduce((sum, z) => sum + Math.exp(z - max), 0)) - logits[targets[n]!]!;
  }
  let slow = 0;
  for (let i = B * H; i < N * H; i++) slow += (outputs[i]! - outputs[i - B * H]!) ** 2;
  return { loss: ce / N + (slowness * slow) / ((T - 1) * B), stats };
}

/** Central differences of `f` in every coordinate of `params`, in place. */
function numericGradient(params: Float64Array, f: () => number): Float64Array {
  const eps = 1e-5;
  return params.map((value, i) => {
    params[i] = value + eps;
    const up = f();
    params[i] = value - eps;
    const down = f();
    params[i] = value;
    return (up - down) / (2 * eps);
  });
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  }
  expect(scale, `${what} is all zeros`).toBeGreaterThan(0);
  expect(worst / scale, what).toBeLessThan(1e-4);
}

const snapshot = (model: RnnSupernet): Map<string, Float32Array> =>
  new Map([...model.state].map(([name, v]) => [name, v.dataSync().slice() as Float32Array]));

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe('RNN supernet', () => {
  const { corpus, keepBatch, windowBatch } = kjvWindows(40, 4, 10);

  it('uses a small real vocabulary', () => {
    expect(corpus.vocabSize).toBeGreaterThanOrEqual(50);
    expect(corpus.vocabSize).toBeLessThanOrEqual(250);
  });

  const cases = [
    ['branchy cell', BRANCHY, false, 'gather'],
    ['branchy cell with batch norms', BRANCHY, true, 'gather'],
    ['chain with batch norms', CHAIN, true, 'gather'],
    ['branchy cell with batch norms, native slicing', BRANCHY, true, 'native'],
    ['branchy cell, native slicing', BRANCHY, false, 'native'],
    ['twin siblings with batch norms', TWINS, true, 'gather'],
    ['twin siblings, native slicing', TWINS, false, 'native'],
    ['twin siblings with batch norms, native slicing', TWINS, true, 'native'],
  ] as const;
  it.each(
    cases.flatMap(([name, g, withNorms, slicing]) =>
      (['nodes', 'siblings'] as const).map((layout) => [`${name}, ${layout} layout`, g, withNorms, slicing, layout] as const),
    ),
  )('computes the loss and the gradients of the formulas (%s)', (_, g, withNorms, slicing, layout) => {
    const plan = cellPlan(g);
    const [V, H, B, T] = [37, 6, 3, 5];
    const random = new Random(7);
    const ids = (): tf.Tensor => tf.tensor2d(Int32Array.from({ length: B * T }, () => random.int(V)), [B, T], 'int32');
    const batch = { x: ids(), y: ids() };
    keepBatch(batch);
    const window = readWindow(batch, V);
    const uniform = (n: number, low = -0.5, high = 0.5): Float64Array => Float64Array.from({ length: n }, () => low + (high - low) * random.next());
    const embedding = uniform(V * H);
    const weights = plan.prev.map((_, j) => uniform((j === 0 ? 2 : 1) * H * 2 * H));
    const initial = uniform(B * H);
    const widths = [...plan.prev.map(() => 2 * H), H];
    const layers: Norm64[] = widths.map((C) => ({
      scale: uniform(C, 0.5, 1.5),
      offset: uniform(C),
      movingMean: uniform(C),
      movingVariance: uniform(C, 0.5, 2),
    }));
    const slowness = 0.3;
    const f32 = (a: Float64Array, shape: number[]): tf.Tensor => tf.tensor(Float32Array.from(a), shape);
    tf.tidy(() => {
      const masks = sampleMasks(random, window, H, { embedding: 0.7, input: 0.6, hidden: 0.8, output: 0.5 });
      const maskValues = {
        input: masks.input!.dataSync() as Float32Array,
        hidden: masks.hidden!.dataSync() as Float32Array,
        output: masks.output!.dataSync() as Float32Array,
      };
      const weightTensors = (): tf.Tensor[] => weights.map((w, j) => f32(w, [(j === 0 ? 2 : 1) * H, 2 * H]));
      const normTensors = withNorms
        ? layers.map((n) => ({
            scale: f32(n.scale, [n.scale.length]),
            offset: f32(n.offset, [n.scale.length]),
            movingMean: f32(n.movingMean, [n.scale.length]),
            movingVariance: f32(n.movingVariance, [n.scale.length]),
          }))
        : undefined;
      const mine = windowGradients(plan, f32(embedding, [V, H]), weightTensors(), window, f32(initial, [B, H]), masks, slowness, normTensors, slicing, layout);
      const forward = (s: number): ReturnType<typeof referenceForward> =>
        referenceForward(plan, embedding, weights, window, initial, maskValues, H, s, withNorms ? { layers, useBatch: true } : undefined);
      const loss = (): number => forward(slowness).loss;
      expectClose(mine.loss.dataSync(), [forward(0).loss], 'loss');
      expectClose(mine.dEmbedding.dataSync(), numericGradient(embedding, loss), 'embedding gradient');
      mine.dWeights.forEach((d, j) => expectClose(d.dataSync(), numericGradient(weights[j]!, loss), `node ${j} weight gradient`));
      expect(mine.dNorms === undefined).toBe(!withNorms);
      mine.dNorms?.forEach((d, layer) => {
        expectClose(d.scale.dataSync(), numericGradient(layers[layer]!.scale, loss), `norm ${layer} scale gradient`);
        expectClose(d.offset.dataSync(), numericGradient(layers[layer]!.offset, loss), `norm ${layer} offset gradient`);
      });
      const { stats } = forward(0);
      mine.batchStats?.forEach((s, layer) => {
        expectClose(s.mean.dataSync(), stats[layer]!.flatMap((step) => step.mean), `norm ${layer} batch means`);
        expectClose(s.variance.dataSync(), stats[layer]!.flatMap((step) => step.variance), `norm ${layer} batch variances`);
      });
      // Evaluation: zero state, no dropout, the norms' moving statistics.
      const evaluation = windowLoss(plan, f32(embedding, [V, H]), weightTensors(), window, normTensors, slicing);
      const zero = new Float64Array(B * H);
      const expected = referenceForward(plan, embedding, weights, window, zero, {}, H, 0, withNorms ? { layers, useBatch: false } : undefined);
      expectClose(evaluation.dataSync(), [expected.loss], 'evaluation loss');
    });
  });

  it('lowers the loss while training random cells', () => {
    // lr 5, not the reference 20, whose clipped steps are coarse for a model this small.
    const model = new RnnSupernet({ vocabSize: corpus.vocabSize, hiddenSize: 24, nodes: 8, seed: 1 });
    const random = new Random(2);
    const probe = randomGenotype(new Random(3), 8);
    const windows = Array.from({ length: 8 }, (_, i) => windowBatch(i));
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const probeLoss = (): number => mean(windows.map((w) => model.evaluate(probe, w).loss));
    const before = probeLoss();
    expect(before).toBeCloseTo(Math.log(corpus.vocabSize), 1);
    const losses: number[] = [];
    for (let epoch = 0; epoch < 5; epoch++) {
      model.resetState();
      for (const w of windows) losses.push(model.trainStep(randomGenotype(random, 8), w, 5).loss);
    }
    expect(probeLoss()).toBeLessThan(before - 0.5);
    expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 8)) - 0.5);
    model.dispose();
  });

  /** Rows [first, count] of each weight tensor that cell `g` uses, in E's layout (trial/supernet/rnn.ts). */
  const cellRows = (g: RnnGenotype, H: number): Map<string, [number, number]> => {
    const F = RNN_ACTIVATIONS.length;
    return new Map<string, [number, number]>([
      ['w_prev', [RNN_ACTIVATIONS.indexOf(g.nodes[0]!.act) * 2 * H, 2 * H]],
      ...g.nodes.slice(1).map((node, i): [string, [number, number]] => [
        `w_skip_${i + 1}`,
        [(node.prev * F + RNN_ACTIVATIONS.indexOf(node.act)) * H, H],
      ]),
    ]);
  };

  it('changes only the blocks of the sampled cell, the embedding and the batch norms', () => {
    const H = 8;
    const model = new RnnSupernet({ vocabSize: corpus.vocabSize, hiddenSize: H, nodes: 6, seed: 4 });
    const g = BRANCHY;
    const before = snapshot(model);
    model.trainStep(g, windowBatch(0), 20);
    const after = snapshot(model);
    const chosen = cellRows(g, H);
    const shapes = rnnSupernetShapes(model.config);
    expect(shapes.size).toBe(2 + 5 + 4 * 7);
    for (const [name, shape] of shapes) {
      const [rows, cols] = shape.length === 2 ? (shape as [number, number]) : [shape[0]!, 1];
      const old = bits(before.get(name)!);
      const now = bits(after.get(name)!);
      // The embedding (tied softmax) and every norm (shared by all cells) change whole.
      const [first, count] = chosen.get(name) ?? [0, rows];
      for (let r = 0; r < rows; r++) {
        const same = old.subarray(r * cols, (r + 1) * cols).every((v, k) => v === now[r * cols + k]);
        if (r < first || r >= first + count) expect(same, `${name} row ${r} is outside the cell's block`).toBe(true);
      }
      const block = (a: Uint32Array): Uint32Array => a.subarray(first * cols, (first + count) * cols);
      expect(block(old).every((v, k) => v === block(now)[k]), `${name}'s block did not change`).toBe(false);
    }
    model.dispose();
  });

  it("updates each norm's moving statistics once per time step with the batch statistics (decay 0.999)", () => {
    const H = 8;
    const keep = { embedding: 1, input: 1, hidden: 1, output: 1 };
    const model = new RnnSupernet({ vocabSize: corpus.vocabSize, hiddenSize: H, nodes: 6, keep, seed: 6 });
    const g = BRANCHY;
    const batch = windowBatch(2);
    const before = snapshot(model);
    model.trainStep(g, batch, 20);
    tf.tidy(() => {
      const tensor = (name: string): tf.Tensor => tf.tensor(before.get(name)!, model.state.get(name)!.shape);
      const weights = [...cellRows(g, H)].map(([name, [first, count]]) => tf.slice(tensor(name), [first, 0], [count, -1]));
      const layers = [...g.nodes.map((_, j) => `bn_node_${j}`), 'bn_output'];
      const norms = layers.map((layer) => ({
        scale: tensor(`${layer}/scale`),
        offset: tensor(`${layer}/offset`),
        movingMean: tensor(`${layer}/moving_mean`),
        movingVariance: tensor(`${layer}/moving_variance`),
      }));
      const window = readWindow(batch, corpus.vocabSize);
      const initial = tf.zeros([window.batchSize, H]);
      const { batchStats } = windowGradients(cellPlan(g), tensor('embedding'), weights, window, initial, {}, 0, norms);
      layers.forEach((layer, i) => {
        for (const [stat, start] of [['mean', 0], ['variance', 1]] as const) {
          const perStep = batchStats![i]![stat].arraySync() as number[][];
          const expected = perStep[0]!.map((_, c) => perStep.reduce<number>((m, row) => 0.999 * m + 0.001 * row[c]!, start));
          expectClose(model.state.get(`${layer}/moving_${stat}`)!.dataSync(), expected, `${layer} moving ${stat}`);
        }
      });
    });
    model.dispose();
  });

  it('carries the hidden state across training windows; evaluate neither uses nor disturbs it; resetState clears it', () => {
    const model = new RnnSupernet({ vocabSize: corpus.vocabSize, hiddenSize: 16, nodes: 5, seed: 5 });
    const g = randomGenotype(new Random(6), 5);
    expect(model.carriedState()).toBeUndefined();
    model.trainStep(g, windowBatch(0), 20);
    const carried = model.carriedState()!;
    expect(carried.shape).toEqual([4, 16]);
    expect(tf.max(tf.abs(carried)).dataSync()[0]).toBeGreaterThan(0);

    const probe = windowBatch(3);
    const withCarried = model.evaluate(g, probe).loss;
    const untouched = model.carriedState()!;
    expect(Array.from(untouched.dataSync())).toEqual(Array.from(carried.dataSync()));
    model.resetState();
    expect(model.carriedState()).toBeUndefined();
    expect(model.evaluate(g, probe).loss).toBe(withCarried);
    tf.dispose([carried, untouched]);

    // The next window starts from zeros after a reset, from the carried state otherwise.
    const twin = new RnnSupernet(model.config);
    twin.trainStep(g, windowBatch(0), 20);
    const fromZeros = model.trainStep(g, windowBatch(1), 20).loss;
    const fromCarried = twin.trainStep(g, windowBatch(1), 20).loss;
    expect(fromZeros).not.toBe(fromCarried);
    model.dispose();
    twin.dispose();
  });

  it('frees every intermediate tensor', () => {
    const model = new RnnSupernet({ vocabSize: corpus.vocabSize, hiddenSize: 16, nodes: 6, seed: 8 });
    const random = new Random(9);
    const windows = Array.from({ length: 4 }, (_, i) => windowBatch(i));
    model.trainStep(randomGenotype(random, 6), windows[0]!, 20);
    const settled = tf.memory().numTensors;
    for (const w of windows) {
      model.trainStep(randomGenotype(random, 6), w, 20);
      model.evaluate(randomGenotype(random, 6), w);
    }
    expect(tf.memory().numTensors).toBe(settled);
    model.resetState();
    expect(tf.memory().numTensors).toBe(settled - 1);
    const before = tf.memory().numTensors;
    model.dispose();
    expect(tf.memory().numTensors).toBe(before - rnnSupernetShapes(model.config).size);
  });

  it('refuses cells it has no weights for, and windows of another batch size mid-sequence', () => {
    const model = new RnnSupernet({ vocabSize: corpus.vocabSize, hiddenSize: 8, nodes: 4, activations: ['tanh', 'relu'] });
    const g = genotype([
      [-1, 'tanh'],
      [0, 'relu'],
      [1, 'tanh'],
      [1, 'relu'],
    ]);
    expect(rnnLooseEnds(g.nodes)).toEqual([2, 3]);
    expect(() => model.evaluate(CHAIN, windowBatch(0))).toThrow(/3 nodes, this supernet 4/);
    expect(() => model.evaluate({ ...g, nodes: [...g.nodes.slice(0, 3), { prev: 1, act: 'sigmoid' }] }, windowBatch(0))).toThrow(
      /"sigmoid" has no weights/,
    );
    expect(() => model.evaluate({ ...g, nodes: [...g.nodes.slice(0, 3), { prev: 3, act: 'tanh' }] }, windowBatch(0))).toThrow(
      /predecessor 3/,
    );
    model.trainStep(g, windowBatch(0), 20);
    const wide = new TextBatcher(corpus.tokens, 5, 10).window(0);
    keepBatch(wide);
    expect(() => model.trainStep(g, wide, 20)).toThrow(/batch size 4, got 5/);
    model.resetState();
    expect(model.trainStep(g, wide, 20).loss).toBeGreaterThan(0);
    model.dispose();
  });
});
