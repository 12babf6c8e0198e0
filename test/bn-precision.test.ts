/*
 * Batch norm's channel statistics against float64 (issue 10, "precision defect on wasm"). tfjs-wasm's
 * average pool sums a window in one float32 accumulator; when batch norm took each statistic as
 * one pool over the whole batch, its mean on data of mean 3 was 40× further from float64 than the
 * cpu backend's, and a deep sep-conv stack's output and gradients 8–9× further. The bounds sit a
 * few times above what the cpu backend reaches on the same data (TEST_BACKEND=cpu runs the same
 * checks) and below what the whole-batch pool reached.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '../common/random.js';
import { setupBackend, type BackendName } from '../trial/backend.js';
import { BatchNorm, BN_DECAY, chain, Constants, Pass, RELU, Scope, separableConv, VariableStore, type Stage } from '../trial/nn.js';
import { batchNorm64, relativeError, sepStack64, type SepLayer, type Shape4 } from './float64-sepconv.js';

// Batch 16 of 28×28 images with 8 channels: 12,544 values per channel statistic.
const SHAPE: Shape4 = [16, 28, 28, 8];
const C = SHAPE[3];
const SIZE = SHAPE.reduce((a, b) => a * b, 1);
/** The variables of one sep-conv layer, in the order its stages declare them. */
const SEP_PARAMS = ['depthwise', 'pointwise', 'gamma', 'beta'] as const;

let store: VariableStore;
let constants: Constants;

beforeAll(async () => {
  await setupBackend((process.env['TEST_BACKEND'] as BackendName | undefined) ?? 'wasm');
});

afterEach(() => {
  for (const v of store.variables.values()) v.dispose();
  constants.dispose();
});

function freshScope(): Scope {
  store = new VariableStore(new Random(1));
  constants = new Constants();
  return new Scope(store);
}

const normals = (rng: Random, n: number, mean: number, sd: number): Float32Array =>
  Float32Array.from({ length: n }, () => mean + sd * rng.normal());

/** Σ a·b as a scalar op with its own gradient (tfjs-core's Node bundle registers none for tf.sum). */
const dot = (a: tf.Tensor, b: tf.Tensor): tf.Scalar =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.sum(tf.mul(args[0] as tf.Tensor, b)) as tf.Scalar,
    gradFunc: (dy: tf.Tensor) => tf.mul(dy, b),
  }))(a) as tf.Scalar;

/** Largest |a − b| / |b| over elements. */
function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.abs(b[i]!));
  return worst;
}

/** The entries of `errors` above `bound` (an empty object when all are within it). */
const above = (errors: Record<string, number>, bound: number): Record<string, number> =>
  Object.fromEntries(Object.entries(errors).filter(([, e]) => !(e <= bound)));

describe('batch-norm channel statistics against float64', () => {
  it('mean, variance and the sums of the backward pass on data of mean 3', () => {
    // Decay 0: after one training pass the moving statistics are the batch statistics themselves.
    const bn = new BatchNorm(freshScope(), C, { movingStats: true, momentum: 0 });
    const rng = new Random(3);
    const [xs, rs] = [normals(rng, SIZE, 3, 1), normals(rng, SIZE, 3, 1)];
    const x = tf.variable(tf.tensor4d(xs, [...SHAPE]));
    const r = tf.tensor4d(rs, [...SHAPE]);
    const pass = new Pass(true, new Random(7), constants);
    const { grads } = tf.variableGrads(() => dot(bn.apply(x, pass), r), [x, bn.gamma, bn.beta]);
    pass.release();

    const reference = batchNorm64(Float64Array.from(xs), new Float64Array(C).fill(1), new Float64Array(C));
    const expected = reference.backward(Float64Array.from(rs));
    const m = SIZE / C;
    const variance = Float64Array.from(bn.movingVariance!.dataSync(), (v) => (v * (m - 1)) / m);
    const errors = {
      mean: maxRelativeError(bn.movingMean!.dataSync(), reference.mean),
      variance: maxRelativeError(variance, reference.variance),
      dBeta: maxRelativeError(grads[bn.beta.name]!.dataSync(), expected.dBeta),
      dGamma: relativeError(grads[bn.gamma.name]!.dataSync(), expected.dGamma),
      dx: relativeError(grads[x.name]!.dataSync(), expected.dx),
    };
    // Measured (cpu backend | wasm, whole-batch pool | wasm, per-image then batch pools):
    // mean 4e-8 | 1.6e-6 | 1.5e-7, variance 7e-8 | 2.0e-6 | 1.1e-7, dβ 6e-8 | 1.4e-6 | 1.4e-7.
    expect(above({ mean: errors.mean, variance: errors.variance, dBeta: errors.dBeta }, 4e-7)).toEqual({});
    // dγ = Σ dy·x̂ with dy of mean 3 picks up m·3·(error of the mean) against a value of order
    // √m·3, so it magnifies that error √m-fold (here 112), and dx inherits it:
    // dγ 2.7e-5 | 1.0e-3 | 1.1e-4, dx 2.8e-7 | 8.9e-6 | 9.6e-7.
    expect(errors.dGamma).toBeLessThan(3e-4);
    expect(errors.dx).toBeLessThan(3e-6);
    tf.dispose([x, r, ...Object.values(grads)]);
  });

  it('a deep sep-conv stack: forward output and every gradient', () => {
    // 16 × [ReLU → depthwise 5×5 → pointwise → BN], as the micro supernet's sep-conv ops chain
    // in an all-sep-conv cell; the input has mean 3, the weights and γ, β are drawn here.
    const depth = 16;
    const k = 5;
    const rng = new Random(1);
    const scope = freshScope();
    const stages: Stage[] = [];
    const layers: SepLayer[] = [];
    /** Per layer, the variables in the order of SEP_PARAMS. */
    const variables: tf.Variable[][] = [];
    for (let l = 0; l < depth; l++) {
      const sep = separableConv(scope.child(l), k, C, C);
      const bn = new BatchNorm(scope.child(l), C, { movingStats: false, momentum: BN_DECAY });
      const own = [...sep, bn].flatMap((stage) => stage.params);
      const values = [
        normals(rng, k * k * C, 0, Math.sqrt(2 / (k * k))),
        normals(rng, C * C, 0, Math.sqrt(2 / C)),
        normals(rng, C, 1, 0.2),
        normals(rng, C, 0, 0.3),
      ];
      own.forEach((v, i) => v.assign(tf.tensor(values[i]!, v.shape)));
      stages.push(RELU, ...sep, bn);
      variables.push(own);
      const [depthwise, pointwise, gamma, beta] = values.map((v) => Float64Array.from(v));
      layers.push({ k, depthwise: depthwise!, pointwise: pointwise!, gamma: gamma!, beta: beta! });
    }
    const [xs, rs] = [normals(rng, SIZE, 3, 1), normals(rng, SIZE, 0, 1)];
    const x = tf.variable(tf.tensor4d(xs, [...SHAPE]));
    const r = tf.tensor4d(rs, [...SHAPE]);

    // The float32 run's ReLU masks, read from an evaluation pass (the same batch statistics).
    const evaluation = new Pass(false, new Random(7), constants);
    const reluActive: Uint8Array[] = [];
    const output = tf.tidy(() =>
      stages
        .reduce<tf.Tensor4D>((h, stage) => {
          const y = stage.forward(h, evaluation)[0];
          if (stage === RELU) reluActive.push(Uint8Array.from(y.dataSync(), (v) => (v > 0 ? 1 : 0)));
          return y;
        }, x)
        .dataSync(),
    );
    const pass = new Pass(true, new Random(7), constants);
    const { grads } = tf.variableGrads(() => dot(chain(stages, x, pass), r), [x, ...variables.flat()]);
    pass.release();

    const reference = sepStack64(Float64Array.from(xs), SHAPE, layers, Float64Array.from(rs), reluActive);
    const gradientErrors: Record<string, number> = { input: relativeError(grads[x.name]!.dataSync(), reference.input) };
    variables.forEach((own, l) =>
      SEP_PARAMS.forEach((param, i) => {
        gradientErrors[`${l}/${param}`] = relativeError(grads[own[i]!.name]!.dataSync(), reference.layers[l]![param]);
      }),
    );
    // Measured (cpu backend | wasm, whole-batch pool | wasm, per-image then batch pools):
    // output 5.1e-6 | 4.0e-5 | 8.0e-6, worst gradient 5.8e-6 | 5.3e-5 | 1.1e-5.
    expect(relativeError(output, reference.output)).toBeLessThan(1.5e-5);
    expect(above(gradientErrors, 2e-5)).toEqual({});
    tf.dispose([x, r, ...Object.values(grads)]);
  });
});
