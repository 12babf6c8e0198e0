/*
 * The RNN's batch norms through TensorFlow's fused ops (trial/rnn-cell.ts FusedNorm), which only
 * tfjs-node runs: against ComposedNorm, which test/supernet-rnn.test.ts holds to float64 formulas
 * on every backend. Runs where @tensorflow/tfjs-node is installed (a user's npm install, or
 * ../shared/tools/tfjs-node-from-wheel.sh); CI cannot install it, so there it is skipped, with
 * this file's title saying why.
 */
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '../common/random.js';
import type { RnnGenotype } from '../search-spaces/genotype.js';
import { setupBackend } from '../trial/backend.js';
import { cellPlan, readWindow, sampleMasks, windowGradients, windowNorms, type NormKernels, type WindowNorm } from '../trial/rnn-cell.js';

const tfjsNodeInstalled = ((): boolean => {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();

function expectClose(actual: tf.Tensor, expected: tf.Tensor, what: string): void {
  expect(actual.shape, what).toEqual(expected.shape);
  const [a, e] = [actual.dataSync(), expected.dataSync()];
  const scale = Math.max(...e.map(Math.abs));
  expect(scale, `${what} is all zeros`).toBeGreaterThan(0);
  const worst = Math.max(...e.map((x, i) => Math.abs(a[i]! - x)));
  expect(worst / scale, what).toBeLessThan(1e-5);
}

describe.skipIf(!tfjsNodeInstalled)('fused batch norms on tfjs-node (skipped where @tensorflow/tfjs-node is not installed)', () => {
  beforeAll(async () => {
    await setupBackend('tensorflow', () => {});
  });

  it('normalise, backpropagate and report statistics as the composed norm does', () => {
    const random = new Random(4);
    const [B, C, T] = [5, 6, 4];
    const values = (n: number, low = -1, high = 1): Float32Array => Float32Array.from({ length: n }, () => low + (high - low) * random.next());
    tf.tidy(() => {
      const bn = { scale: tf.tensor1d(values(C, 0.5, 1.5)), offset: tf.tensor1d(values(C)) };
      const xs = Array.from({ length: T }, () => tf.tensor2d(values(B * C, -3, 3), [B, C]));
      const dys = Array.from({ length: T }, () => tf.tensor2d(values(B * C), [B, C]));
      const run = (kind: NormKernels) => {
        const [norm] = windowNorms([bn], kind, 'native') as [WindowNorm];
        const ys = xs.map((x) => norm.forward(x));
        const dxs = dys.map((_, i) => T - 1 - i).map((t) => norm.backward(t, dys[t]!));
        return { ys, dxs, gradients: norm.gradients(), statistics: norm.statistics() };
      };
      const [fused, composed] = [run('fused'), run('composed')];
      fused.ys.forEach((y, t) => expectClose(y, composed.ys[t]!, `y at step ${t}`));
      fused.dxs.forEach((dx, i) => expectClose(dx, composed.dxs[i]!, `dx at step ${T - 1 - i}`));
      expectClose(fused.gradients.scale, composed.gradients.scale, 'scale gradient');
      expectClose(fused.gradients.offset, composed.gradients.offset, 'offset gradient');
      expectClose(fused.statistics.mean, composed.statistics.mean, 'batch means');
      expectClose(fused.statistics.variance, composed.statistics.variance, 'batch variances (biased)');
    });
  });

  it('give a training window the gradients and statistics of composed norms (siblings, 3-way group)', () => {
    const g: RnnGenotype = {
      space: 'rnn',
      nodes: [
        { prev: -1, act: 'tanh' },
        { prev: 0, act: 'relu' },
        { prev: 0, act: 'sigmoid' },
        { prev: 0, act: 'identity' },
        { prev: 2, act: 'tanh' },
      ],
    };
    const plan = cellPlan(g);
    const [V, H, B, T] = [23, 4, 3, 5];
    const random = new Random(9);
    const uniform = (shape: number[], low = -0.5, high = 0.5): tf.Tensor =>
      tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => low + (high - low) * random.next()), shape);
    tf.tidy(() => {
      const ids = (): tf.Tensor => tf.tensor2d(Int32Array.from({ length: B * T }, () => random.int(V)), [B, T], 'int32');
      const window = readWindow({ x: ids(), y: ids() }, V);
      const embedding = uniform([V, H]);
      const weights = plan.prev.map((_, j) => uniform([(j === 0 ? 2 : 1) * H, 2 * H]));
      const norms = [...plan.prev.map(() => 2 * H), H].map((C) => ({
        scale: uniform([C], 0.5, 1.5),
        offset: uniform([C]),
        movingMean: uniform([C]),
        movingVariance: uniform([C], 0.5, 2),
      }));
      const initial = uniform([B, H]);
      const masks = sampleMasks(random, window, H, { embedding: 0.8, input: 0.7, hidden: 0.8, output: 0.6 });
      const run = (kind: NormKernels) => windowGradients(plan, embedding, weights, window, initial, masks, 0.2, norms, 'native', 'siblings', kind);
      const [fused, composed] = [run('fused'), run('composed')];
      expectClose(fused.loss, composed.loss, 'loss');
      expectClose(fused.dEmbedding, composed.dEmbedding, 'embedding gradient');
      fused.dWeights.forEach((d, j) => expectClose(d, composed.dWeights[j]!, `node ${j} weight gradient`));
      fused.dNorms!.forEach((d, layer) => {
        expectClose(d.scale, composed.dNorms![layer]!.scale, `norm ${layer} scale gradient`);
        expectClose(d.offset, composed.dNorms![layer]!.offset, `norm ${layer} offset gradient`);
      });
      fused.batchStats!.forEach((s, layer) => {
        expectClose(s.mean, composed.batchStats![layer]!.mean, `norm ${layer} batch means`);
        expectClose(s.variance, composed.batchStats![layer]!.variance, `norm ${layer} batch variances`);
      });
    });
  });
});
