/*
 * The CNN op registry (trial/ops.ts) and its building blocks (trial/nn.ts): output shapes of every
 * op at both strides and in both modes, factorized reduction against a direct computation, batch
 * norm statistics, the hand-written backward passes of every stage against finite differences,
 * and the child optimizer and its learning-rate schedule (trial/optim.ts).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '../common/random.js';
import { MACRO_OPS, MICRO_OPS } from '../search-spaces/genotype.js';
import { setupBackend, type BackendName } from '../trial/backend.js';
import {
  BatchNorm,
  chain,
  concatChannels,
  Constants,
  Conv,
  DepthwiseConv,
  FactorizedReduction,
  globalAvgPool,
  Linear,
  Pass,
  PointwiseConv,
  Pool,
  RELU,
  Scope,
  sum,
  VariableStore,
} from '../trial/nn.js';
import { MACRO_OP_FACTORIES, MICRO_OP_FACTORIES, type CnnOpFactory } from '../trial/ops.js';
import { cosineLr, NesterovMomentum, REFERENCE_LR } from '../trial/optim.js';

let store: VariableStore;
let constants: Constants;
const pass = (training: boolean): Pass => new Pass(training, new Random(7), constants);

beforeAll(async () => {
  // wasm by default (with the project's training kernels); TEST_BACKEND=cpu checks the same on the reference backend.
  await setupBackend((process.env['TEST_BACKEND'] as BackendName | undefined) ?? 'wasm');
});

function freshScope(seed = 1): Scope {
  store = new VariableStore(new Random(seed));
  constants = new Constants();
  return new Scope(store);
}

afterEach(() => {
  for (const v of store?.variables.values() ?? []) v.dispose();
  constants?.dispose();
});

const values = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;
/** Σ a·b as a scalar op with its own gradient (tfjs-core's Node bundle registers none for tf.sum). */
const dot = (a: tf.Tensor, b: tf.Tensor): tf.Scalar =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.sum(tf.mul(args[0] as tf.Tensor, b)) as tf.Scalar,
    gradFunc: (dy: tf.Tensor) => tf.mul(dy, b),
  }))(a) as tf.Scalar;
const randomTensor = (shape: number[], seed: number): tf.Tensor => {
  const rng = new Random(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
};

describe('op registry', () => {
  const C = 6;
  const registries: [string, readonly string[], Record<string, CnnOpFactory>][] = [
    ['macro', MACRO_OPS, MACRO_OP_FACTORIES],
    ['micro', MICRO_OPS, MICRO_OP_FACTORIES],
  ];
  for (const [space, names, factories] of registries) {
    it(`${space}: has exactly the ops of the genotype encoding`, () => {
      expect(Object.keys(factories).sort()).toEqual([...names].sort());
    });
    for (const op of names)
      for (const mode of ['search', 'fixed'] as const)
        for (const stride of [1, 2] as const)
          it(`${space} ${op}, ${mode}, stride ${stride}: output shape, training and evaluation`, () => {
            const build = () => factories[op]!({ scope: freshScope(), channels: C, stride, mode, bnMomentum: 0.9 });
            if (space === 'macro' && stride === 2) {
              expect(build).toThrow(/stride 1/);
              return;
            }
            const apply = build();
            for (const size of [8, 7]) {
              const x = randomTensor([2, size, size, C], 3) as tf.Tensor4D;
              const out = Math.ceil(size / stride);
              for (const training of [true, false]) {
                const p = pass(training);
                const y = tf.tidy(() => tf.clone(apply(x, p)));
                p.release();
                expect(y.shape).toEqual([2, out, out, C]);
                expect(values(y).every(Number.isFinite)).toBe(true);
                y.dispose();
              }
              x.dispose();
            }
          });
  }

  it('micro search BNs keep no moving statistics; macro and fixed-mode BNs do', () => {
    const moving = (factory: CnnOpFactory, mode: 'search' | 'fixed') => {
      const scope = freshScope();
      factory({ scope, channels: C, stride: 1, mode, bnMomentum: 0.9 });
      const names = [...store.variables.keys()];
      for (const v of store.variables.values()) v.dispose();
      return names.filter((n) => n.includes('moving_')).length;
    };
    expect(moving(MICRO_OP_FACTORIES.sepconv3x3, 'search')).toBe(0);
    expect(moving(MICRO_OP_FACTORIES.sepconv3x3, 'fixed')).toBe(4);
    expect(moving(MACRO_OP_FACTORIES.sepconv5x5, 'search')).toBe(4);
  });
});

describe('factorized reduction', () => {
  /** FR computed directly: even pixels · W1 ‖ odd pixels (zero past the border) · W2, then BN with batch statistics. */
  function reference(x: tf.Tensor4D, w1: tf.Tensor, w2: tf.Tensor): Float32Array {
    const [b, h, w, c] = x.shape;
    const [h2, w2s, half] = [Math.ceil(h / 2), Math.ceil(w / 2), w1.shape[1]!];
    const xs = values(x);
    const [a1, a2] = [values(w1), values(w2)];
    const out = new Float32Array(b * h2 * w2s * 2 * half);
    const pixel = (n: number, i: number, j: number, k: number) => (i < h && j < w ? xs[((n * h + i) * w + j) * c + k]! : 0);
    for (let n = 0; n < b; n++)
      for (let i = 0; i < h2; i++)
        for (let j = 0; j < w2s; j++)
          for (let o = 0; o < half; o++) {
            let even = 0;
            let odd = 0;
            for (let k = 0; k < c; k++) {
              even += pixel(n, 2 * i, 2 * j, k) * a1[k * half + o]!;
              odd += pixel(n, 2 * i + 1, 2 * j + 1, k) * a2[k * half + o]!;
            }
            const at = ((n * h2 + i) * w2s + j) * 2 * half;
            out[at + o] = even;
            out[at + half + o] = odd;
          }
    const channels = 2 * half;
    const m = out.length / channels;
    for (let ch = 0; ch < channels; ch++) {
      let mean = 0;
      for (let p = 0; p < m; p++) mean += out[p * channels + ch]! / m;
      let variance = 0;
      for (let p = 0; p < m; p++) variance += (out[p * channels + ch]! - mean) ** 2 / m;
      for (let p = 0; p < m; p++) out[p * channels + ch] = (out[p * channels + ch]! - mean) / Math.sqrt(variance + 1e-5);
    }
    return out;
  }

  for (const size of [8, 7])
    it(`halves ${size}×${size} (ceil) and picks the even and shifted-odd pixels`, () => {
      const fr = new FactorizedReduction(freshScope(), 5, 8, { movingStats: true, momentum: 0.9 });
      const x = randomTensor([2, size, size, 5], 11) as tf.Tensor4D;
      const p = pass(true);
      const y = tf.tidy(() => tf.clone(fr.apply(x, p)));
      p.release();
      const out = Math.ceil(size / 2);
      expect(y.shape).toEqual([2, out, out, 8]);
      const expected = reference(x, fr.path1.w, fr.path2.w);
      const actual = values(y);
      for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i]!, 3);
      tf.dispose([x, y]);
    });
});

describe('batch norm', () => {
  it('normalises each channel with batch statistics, then scales and shifts', () => {
    const bn = new BatchNorm(freshScope(), 3, { movingStats: false, momentum: 0.9 });
    bn.gamma.assign(tf.tensor1d([1, 2, 0.5]));
    bn.beta.assign(tf.tensor1d([0, -1, 3]));
    const x = tf.add(tf.mul(randomTensor([4, 5, 5, 3], 2), 3), 7) as tf.Tensor4D;
    const p = pass(true);
    const { mean, variance } = tf.tidy(() => tf.moments(bn.apply(x, p), [0, 1, 2]));
    p.release();
    expect(Array.from(values(mean))).toEqual([0, -1, 3].map((v) => expect.closeTo(v, 4)));
    expect(Array.from(values(variance))).toEqual([1, 4, 0.25].map((v) => expect.closeTo(v, 3)));
    tf.dispose([x, mean, variance]);
  });

  it('folds batch statistics into moving ones while training and uses them in evaluation', () => {
    const bn = new BatchNorm(freshScope(), 2, { movingStats: true, momentum: 0.9 });
    const x = tf.add(randomTensor([3, 4, 4, 2], 5), 2) as tf.Tensor4D;
    const p = pass(true);
    tf.dispose(tf.tidy(() => bn.apply(x, p)));
    p.release();
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const m = 3 * 4 * 4;
    const expectedMean = Array.from(values(mean), (v) => 0.1 * v);
    const expectedVariance = Array.from(values(variance), (v) => 0.9 + (0.1 * v * m) / (m - 1));
    Array.from(values(bn.movingMean!)).forEach((v, i) => expect(v).toBeCloseTo(expectedMean[i]!, 4));
    Array.from(values(bn.movingVariance!)).forEach((v, i) => expect(v).toBeCloseTo(expectedVariance[i]!, 4));
    const evaluated = tf.tidy(() => bn.apply(x, pass(false)));
    const expected = tf.tidy(() => tf.div(tf.sub(x, bn.movingMean!), tf.sqrt(tf.add(bn.movingVariance!, 1e-5))));
    const [a, e] = [values(evaluated), values(expected)];
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(e[i]!, 4);
    tf.dispose([x, mean, variance, evaluated, expected]);
  });
});

/**
 * Checks tf.variableGrads of `loss` against central differences along a random direction per
 * variable: ⟨∇f, d⟩ ≈ (f(v + εd) − f(v − εd)) / 2ε.
 */
function expectGradientsMatchDifferences(loss: (p: Pass) => tf.Scalar, variables: tf.Variable[], tolerance = 0.03): void {
  const training = pass(true);
  const { grads, value } = tf.variableGrads(() => loss(training), variables);
  training.release();
  value.dispose();
  const epsilon = 3e-3;
  variables.forEach((v, i) => {
    const direction = randomTensor(v.shape, 100 + i);
    const base = tf.clone(v);
    const at = (sign: number) => {
      v.assign(tf.tidy(() => tf.add(base, tf.mul(direction, sign * epsilon))));
      return tf.tidy(() => loss(pass(false)).dataSync()[0]!);
    };
    const numeric = (at(1) - at(-1)) / (2 * epsilon);
    v.assign(base);
    const analytic = tf.tidy(() => tf.sum(tf.mul(grads[v.name]!, direction)).dataSync()[0]!);
    expect(Math.abs(analytic - numeric)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(numeric)));
    tf.dispose([direction, base]);
  });
  tf.dispose(grads);
}

describe('gradients', () => {
  it('batch norm: its hand-written gradient matches finite differences (x, γ, β)', () => {
    const bn = new BatchNorm(freshScope(), 4, { movingStats: false, momentum: 0.9 });
    const x = tf.variable(randomTensor([3, 4, 4, 4], 9));
    const weights = randomTensor([3, 4, 4, 4], 10);
    bn.gamma.assign(tf.tensor1d([1.5, 0.5, -1, 2]));
    // Evaluation without moving statistics also normalises with batch statistics: the same function.
    const loss = (p: Pass) => tf.tidy(() => dot(bn.apply(x as tf.Tensor4D, p), weights));
    expectGradientsMatchDifferences(loss, [x, bn.gamma, bn.beta]);
    tf.dispose([x, weights]);
  });

  it('every stage and combinator: the hand-written backward passes match finite differences', () => {
    const scope = freshScope();
    const bnOptions = { movingStats: false, momentum: 0.9 };
    const conv = new Conv(scope.child('conv'), 3, 3, 4);
    const depthwise = new DepthwiseConv(scope.child('dw'), 5, 4, 2);
    const pointwise = new PointwiseConv(scope.child('pw'), 4, 6);
    const bn = new BatchNorm(scope.child('bn'), 6, bnOptions);
    const reduce = new FactorizedReduction(scope.child('fr'), 6, 4, bnOptions);
    const fc = new Linear(scope.child('fc'), 16, 3);
    const x = randomTensor([2, 9, 9, 3], 21) as tf.Tensor4D;
    const target = randomTensor([2, 3], 22);
    const loss = (p: Pass) =>
      tf.tidy(() => {
        const a = chain([conv, RELU, depthwise, pointwise, bn], x, p, false);
        const pooled = sum([chain([new Pool('avg', 3, 1, 'same')], a, p), chain([new Pool('max', 3, 1, 'same')], a, p), p.relu(a)], p);
        const reduced = reduce.apply(pooled, p);
        const features = globalAvgPool(concatChannels([reduced, p.relu(reduced), chain([new Pool('max', 2, 1, 'same')], reduced, p), reduced], p));
        return dot(fc.apply(features), target);
      });
    expectGradientsMatchDifferences(loss, [conv.w, depthwise.filter, pointwise.w, bn.gamma, bn.beta, reduce.path1.w, reduce.path2.w, fc.w]);
    tf.dispose([x, target]);
  });
});

describe('optimizer', () => {
  it('takes TF Nesterov momentum steps with L2 on the variables that have a gradient', () => {
    const scope = freshScope();
    const used = scope.filled('used', [2], 1);
    const unused = scope.filled('unused', [2], 1);
    const optimizer = new NesterovMomentum({ l2: 0.1 });
    const slots = optimizer.addSlots(store.variables);
    expect([...slots.keys()]).toEqual(['used/momentum', 'unused/momentum']);
    // g' = g + 2λw; a = 0.9a + g'; w -= lr(g' + 0.9a)
    let [w, a] = [1, 0];
    for (const g of [0.5, -0.25]) {
      optimizer.apply([['used', Float32Array.of(g, g)]], 0.1);
      const gi = g + 0.2 * w;
      a = 0.9 * a + gi;
      w -= 0.1 * (gi + 0.9 * a);
    }
    Array.from(values(used)).forEach((v) => expect(v).toBeCloseTo(w, 6));
    Array.from(values(slots.get('used/momentum')!)).forEach((v) => expect(v).toBeCloseTo(a, 6));
    expect(Array.from(values(unused))).toEqual([1, 1]);
    expect(Array.from(values(slots.get('unused/momentum')!))).toEqual([0, 0]);
    for (const slot of slots.values()) slot.dispose();
  });

  it('cosine schedule restarts at epochs 10, 30, 70, 150 (ENAS.md §3)', () => {
    const s = REFERENCE_LR.microSearch;
    for (const restart of [0, 10, 30, 70, 150]) expect(cosineLr(restart, s)).toBeCloseTo(s.lrMax, 10);
    expect(cosineLr(5, s)).toBeCloseTo((s.lrMax + s.lrMin) / 2, 10);
    expect(cosineLr(20, s)).toBeCloseTo((s.lrMax + s.lrMin) / 2, 10);
    expect(cosineLr(29, s)).toBeLessThan(cosineLr(28, s));
    expect(cosineLr(29.9, s)).toBe(cosineLr(29, s));
    expect(cosineLr(149, s)).toBeGreaterThan(s.lrMin);
  });
});
