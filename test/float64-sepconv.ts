/*
 * A float64 reference, in plain loops, of batch norm with batch statistics and of a stack of micro
 * sep-conv layers as trial/nn.ts runs them in the micro supernet: repeat [ReLU → depthwise k×k
 * (SAME, stride 1) → pointwise 1×1 → batch norm], NHWC, with the loss Σ y·r and its hand-derived
 * backward pass. It reads the same float32 weights and inputs as the tfjs stack, so any difference between the
 * two is float32 arithmetic. Which ReLU inputs are positive can be taken from the float32 run:
 * a pre-activation within rounding of zero flips the gradient of one element, a discrete change
 * of ~1/√(elements) in relative error that says nothing about the precision of the sums.
 */

import { BN_EPSILON } from '../trial/nn.js';

export type Shape4 = readonly [number, number, number, number];

export interface SepLayer {
  /** [k, k, C, 1] as DepthwiseConv stores it, flattened. */
  depthwise: Float64Array;
  k: number;
  /** [C, C] (in, out) as PointwiseConv stores it, flattened. */
  pointwise: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
}

export interface SepGrads {
  depthwise: Float64Array;
  pointwise: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
}

export interface StackResult {
  output: Float64Array;
  /** Gradient of the loss with respect to the stack's input. */
  input: Float64Array;
  layers: SepGrads[];
}

/** Per-channel mean of NHWC data with C channels, accumulated in float64. */
function channelMean64(x: ArrayLike<number>, channels: number): Float64Array {
  const mean = new Float64Array(channels);
  for (let i = 0; i < x.length; i++) mean[i % channels]! += x[i]!;
  const m = x.length / channels;
  for (let c = 0; c < channels; c++) mean[c]! /= m;
  return mean;
}

/** Calls `tap(out, src, f)` for every (output pixel, input pixel, filter tap) of a SAME k×k depthwise conv: offsets of their channel runs. */
function forEachTap(shape: Shape4, k: number, tap: (out: number, src: number, f: number) => void): void {
  const [b, h, w, c] = shape;
  const pad = (k - 1) >> 1;
  for (let n = 0; n < b; n++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let di = 0; di < k; di++) {
          const si = i + di - pad;
          if (si < 0 || si >= h) continue;
          for (let dj = 0; dj < k; dj++) {
            const sj = j + dj - pad;
            if (sj < 0 || sj >= w) continue;
            tap(((n * h + i) * w + j) * c, ((n * h + si) * w + sj) * c, (di * k + dj) * c);
          }
        }
}

function depthwise(x: Float64Array, shape: Shape4, filter: Float64Array, k: number): Float64Array {
  const c = shape[3];
  const y = new Float64Array(x.length);
  forEachTap(shape, k, (out, src, f) => {
    for (let ch = 0; ch < c; ch++) y[out + ch]! += x[src + ch]! * filter[f + ch]!;
  });
  return y;
}

/** dx and d(filter) of `depthwise` for output gradient dy. */
function depthwiseBackward(x: Float64Array, shape: Shape4, filter: Float64Array, k: number, dy: Float64Array): [Float64Array, Float64Array] {
  const c = shape[3];
  const dx = new Float64Array(x.length);
  const df = new Float64Array(filter.length);
  forEachTap(shape, k, (out, src, f) => {
    for (let ch = 0; ch < c; ch++) {
      dx[src + ch]! += dy[out + ch]! * filter[f + ch]!;
      df[f + ch]! += dy[out + ch]! * x[src + ch]!;
    }
  });
  return [dx, df];
}

/** x·w over pixels, or with `transpose` x·wᵀ; w is [C, C]. */
function pointwise(x: Float64Array, c: number, w: Float64Array, transpose: boolean): Float64Array {
  const y = new Float64Array(x.length);
  for (let p = 0; p < x.length; p += c)
    for (let i = 0; i < c; i++) {
      const xi = x[p + i]!;
      for (let o = 0; o < c; o++) y[p + o]! += xi * (transpose ? w[o * c + i]! : w[i * c + o]!);
    }
  return y;
}

/** xᵀ·dy summed over pixels: the pointwise filter's gradient. */
function pointwiseFilterGrad(x: Float64Array, dy: Float64Array, c: number): Float64Array {
  const dw = new Float64Array(c * c);
  for (let p = 0; p < x.length; p += c)
    for (let i = 0; i < c; i++) for (let o = 0; o < c; o++) dw[i * c + o]! += x[p + i]! * dy[p + o]!;
  return dw;
}

export interface BatchNorm64 {
  mean: Float64Array;
  /** Biased (1/m) batch variance, as the forward pass normalises with. */
  variance: Float64Array;
  y: Float64Array;
  /** Returns dx, dγ, dβ for output gradient dy. */
  backward(dy: Float64Array): { dx: Float64Array; dGamma: Float64Array; dBeta: Float64Array };
}

/** Batch norm over the C = γ.length channels of NHWC x with batch statistics (ε as trial/nn.ts). */
export function batchNorm64(x: Float64Array, gamma: Float64Array, beta: Float64Array): BatchNorm64 {
  const c = gamma.length;
  const m = x.length / c;
  const mean = channelMean64(x, c);
  const variance = channelMean64(
    x.map((v, i) => (v - mean[i % c]!) ** 2),
    c,
  );
  const rstd = variance.map((v) => 1 / Math.sqrt(v + BN_EPSILON));
  const normalized = x.map((v, i) => (v - mean[i % c]!) * rstd[i % c]!);
  return {
    mean,
    variance,
    y: normalized.map((v, i) => v * gamma[i % c]! + beta[i % c]!),
    backward(dy) {
      const dGamma = new Float64Array(c);
      const dBeta = new Float64Array(c);
      for (let i = 0; i < dy.length; i++) {
        dGamma[i % c]! += dy[i]! * normalized[i]!;
        dBeta[i % c]! += dy[i]!;
      }
      // dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂))
      const dx = dy.map((g, i) => {
        const ch = i % c;
        return gamma[ch]! * rstd[ch]! * (g - dBeta[ch]! / m - (normalized[i]! * dGamma[ch]!) / m);
      });
      return { dx, dGamma, dBeta };
    },
  };
}

interface LayerTape {
  relu: Float64Array;
  depth: Float64Array;
  bn: BatchNorm64;
}

/**
 * Runs the stack on x (shape `shape`, C = shape[3]) with loss Σ y·r, then its backward pass.
 * `reluActive[l]`, if given, says which inputs of layer l's ReLU pass (1) or are zeroed (0).
 */
export function sepStack64(
  x: Float64Array,
  shape: Shape4,
  layers: readonly SepLayer[],
  r: Float64Array,
  reluActive?: readonly Uint8Array[],
): StackResult {
  const c = shape[3];
  const tapes: LayerTape[] = [];
  let h = x;
  for (const [l, layer] of layers.entries()) {
    const active = reluActive?.[l];
    const relu = active ? h.map((v, i) => (active[i] ? v : 0)) : h.map((v) => Math.max(v, 0));
    const depth = depthwise(relu, shape, layer.depthwise, layer.k);
    const bn = batchNorm64(pointwise(depth, c, layer.pointwise, false), layer.gamma, layer.beta);
    h = bn.y;
    tapes.push({ relu, depth, bn });
  }

  const grads: SepGrads[] = [];
  let dy = r;
  for (let l = layers.length - 1; l >= 0; l--) {
    const layer = layers[l]!;
    const { relu, depth, bn } = tapes[l]!;
    const active = reluActive?.[l];
    const { dx: dConv, dGamma, dBeta } = bn.backward(dy);
    const dPointwise = pointwiseFilterGrad(depth, dConv, c);
    const dDepth = pointwise(dConv, c, layer.pointwise, true);
    const [dRelu, dDepthwise] = depthwiseBackward(relu, shape, layer.depthwise, layer.k, dDepth);
    dy = dRelu.map((g, i) => ((active ? active[i] : relu[i]! > 0) ? g : 0));
    grads[l] = { depthwise: dDepthwise, pointwise: dPointwise, gamma: dGamma, beta: dBeta };
  }
  return { output: h, input: dy, layers: grads };
}

/** ‖a − b‖₂ / ‖b‖₂. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += b[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}
