/*
 * Corrected gradients of 2-D max and average pooling (NHWC), for wasm and cpu.
 * - MaxPoolGrad: stock wasm loses the gradient of windows whose values are all negative.
 *   Ours routes dy to the first maximum of each window, like TensorFlow and stock cpu: a SIMD
 *   loop on wasm (channels % 4 == 0, else the JS loop), a JS loop on cpu.
 * - AvgPoolGrad: stock wasm and cpu divide by k·k everywhere, but the forward pass ('same'
 *   padding) divides border windows by the number of pixels inside the input. Ours divides
 *   by the same count as the forward pass, so it is the true gradient. On wasm it is dy/count
 *   fed to the depthwise input gradient (depthwise.ts) with a filter of ones; a JS loop on cpu.
 */
import tf = require('@tensorflow/tfjs-core');
import type { AvgPoolGradAttrs, KernelConfig, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { cpuKernel } from './cpu-backend.js';
import { depthwiseInputGrad } from './depthwise.js';
import { poolGeometry } from './geometry.js';
import type { ConvGeometry, Shape4 } from './geometry.js';
import { input } from './layout.js';
import {
  FunctionBuilder,
  add,
  addF32,
  addI32x4,
  at,
  bitselect,
  constI32x4,
  ge,
  get,
  gtF32x4,
  i32,
  laneI32,
  loadF32,
  loadV128,
  loop,
  max,
  min,
  mul,
  mulF32x4,
  nhwc,
  seq,
  set,
  splatF32,
  splatI32,
  storeF32,
  storeV128,
  sub,
  when,
} from './wasm-asm.js';
import type { Local } from './wasm-asm.js';
import { wasmKernel } from './wasm-backend.js';
import { GEOMETRY_PARAMS, heapAddress, runOnTensors, simdLoop } from './wasm-simd.js';
import type { SimdLoopDefinition } from './wasm-simd.js';

const { AvgPoolGrad, MaxPoolGrad } = tf;

/** Rows (or columns) of the input under pooling window `index`, clipped to the input. */
function windowSpan(index: number, stride: number, pad: number, size: number, extent: number): [number, number] {
  const start = index * stride - pad;
  return [Math.max(start, 0), Math.min(start + size, extent)];
}

/** For each output position, 1 / the number of input pixels its window covers (row-major [outHeight, outWidth]). */
function inverseWindowCounts(g: ConvGeometry): Float32Array {
  const factors = new Float32Array(g.outHeight * g.outWidth);
  for (let i = 0; i < g.outHeight; i++) {
    const [h0, h1] = windowSpan(i, g.strideHeight, g.padTop, g.filterHeight, g.inHeight);
    for (let j = 0; j < g.outWidth; j++) {
      const [w0, w1] = windowSpan(j, g.strideWidth, g.padLeft, g.filterWidth, g.inWidth);
      factors[i * g.outWidth + j] = 1 / ((h1 - h0) * (w1 - w0));
    }
  }
  return factors;
}

/** target[n, q, :] = source[n, q, :]·factors[q], q running over the positions of an image. */
function scaleByPositionLoop(source: Float32Array, target: Float32Array, factors: Float32Array, channels: number): void {
  const positions = factors.length;
  for (let base = 0, q = 0; base < source.length; base += channels, q = q + 1 === positions ? 0 : q + 1) {
    const factor = factors[q];
    for (let c = base; c < base + channels; c++) target[c] = source[c] * factor;
  }
}

/** scaleByPositionLoop in wasm SIMD (channels % 4 == 0). */
function scaleByPositionSimd(): SimdLoopDefinition {
  const builder = new FunctionBuilder('scaleByPosition', ['source', 'target', 'factors', 'batch', 'positions', 'channels']);
  const p = builder.params;
  const [n, q, c, from, to] = Array.from({ length: 5 }, () => builder.i32());
  const factor = builder.v128();
  const body = seq(
    set(from, get(p.source)),
    set(to, get(p.target)),
    loop(n, i32(0), get(p.batch), 1,
      loop(q, i32(0), get(p.positions), 1,
        set(factor, splatF32(loadF32(at(get(p.factors), get(q))))),
        loop(c, i32(0), get(p.channels), 4,
          storeV128(get(to), mulF32x4(loadV128(get(from)), get(factor))),
          set(from, add(get(from), i32(16))),
          set(to, add(get(to), i32(16))),
        ),
      ),
    ),
  );
  return { builder, body };
}

/** dx[first argmax of window (n,i,j), c] += dy[n,i,j,c], into a zeroed dx; windows of NaNs get nothing. */
function maxPoolGradLoop(x: Float32Array, dy: Float32Array, dx: Float32Array, g: ConvGeometry): void {
  const { inHeight: height, inWidth: width, inChannels: channels } = g;
  const best = new Float32Array(channels);
  const bestAt = new Int32Array(channels);
  for (let n = 0; n < g.batch; n++) {
    for (let i = 0; i < g.outHeight; i++) {
      const [h0, h1] = windowSpan(i, g.strideHeight, g.padTop, g.filterHeight, height);
      for (let j = 0; j < g.outWidth; j++) {
        const [w0, w1] = windowSpan(j, g.strideWidth, g.padLeft, g.filterWidth, width);
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let h = h0; h < h1; h++) {
          for (let w = w0; w < w1; w++) {
            const base = ((n * height + h) * width + w) * channels;
            for (let c = 0; c < channels; c++) {
              const value = x[base + c];
              if (value > best[c]) {
                best[c] = value;
                bestAt[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((n * g.outHeight + i) * g.outWidth + j) * channels;
        for (let c = 0; c < channels; c++) if (bestAt[c] >= 0) dx[bestAt[c]] += dy[dyBase + c];
      }
    }
  }
}

/** dx[p] += dy[n,i,j,c] / count(i,j) for every input pixel p in window (n,i,j), into a zeroed dx. */
function avgPoolGradLoop(dy: Float32Array, dx: Float32Array, g: ConvGeometry): void {
  const { inHeight: height, inWidth: width, inChannels: channels } = g;
  const factors = inverseWindowCounts(g);
  for (let n = 0; n < g.batch; n++) {
    for (let i = 0; i < g.outHeight; i++) {
      const [h0, h1] = windowSpan(i, g.strideHeight, g.padTop, g.filterHeight, height);
      for (let j = 0; j < g.outWidth; j++) {
        const [w0, w1] = windowSpan(j, g.strideWidth, g.padLeft, g.filterWidth, width);
        const factor = factors[i * g.outWidth + j];
        const dyBase = ((n * g.outHeight + i) * g.outWidth + j) * channels;
        for (let h = h0; h < h1; h++) {
          for (let w = w0; w < w1; w++) {
            const base = ((n * height + h) * width + w) * channels;
            for (let c = 0; c < channels; c++) dx[base + c] += dy[dyBase + c] * factor;
          }
        }
      }
    }
  }
}

/**
 * maxPoolGradLoop in wasm SIMD, four channels at a time (channels % 4 == 0): the window's
 * running maximum and its position are kept per lane with compare + bitselect, which avoids the
 * unpredictable branch that makes the JS loop slow. dx must be zeroed.
 */
function maxPoolGradSimd(): SimdLoopDefinition {
  const builder = new FunctionBuilder('maxPoolGrad', ['x', 'dy', 'dx', ...GEOMETRY_PARAMS]);
  const p = builder.params;
  const [n, i, j, c, h, w, h0, h1, w0, w1, pixel, dyIndex, target] = Array.from({ length: 13 }, () => builder.i32());
  const [best, bestAt, value, isGreater] = Array.from({ length: 4 }, () => builder.v128());
  const windowStart = (index: Local, stride: Local, pad: Local) => sub(mul(get(index), get(stride)), get(pad));
  const scatterLane = (lane: number) => [
    set(target, laneI32(get(bestAt), lane)),
    when(
      ge(get(target), i32(0)),
      storeF32(
        at(get(p.dx), get(target)),
        addF32(loadF32(at(get(p.dx), get(target))), loadF32(at(get(p.dy), add(get(dyIndex), i32(lane))))),
      ),
    ),
  ];
  const body = loop(n, i32(0), get(p.batch), 1,
    loop(i, i32(0), get(p.outHeight), 1,
      set(h0, max(windowStart(i, p.strideHeight, p.padTop), i32(0))),
      set(h1, min(add(windowStart(i, p.strideHeight, p.padTop), get(p.filterHeight)), get(p.height))),
      loop(j, i32(0), get(p.outWidth), 1,
        set(w0, max(windowStart(j, p.strideWidth, p.padLeft), i32(0))),
        set(w1, min(add(windowStart(j, p.strideWidth, p.padLeft), get(p.filterWidth)), get(p.width))),
        loop(c, i32(0), get(p.channels), 4,
          set(best, splatF32(-Infinity)),
          set(bestAt, constI32x4([-1, -1, -1, -1])),
          loop(h, get(h0), get(h1), 1,
            set(pixel, nhwc(get(n), get(h), get(w0), get(c), get(p.height), get(p.width), get(p.channels))),
            loop(w, get(w0), get(w1), 1,
              set(value, loadV128(at(get(p.x), get(pixel)))),
              set(isGreater, gtF32x4(get(value), get(best))),
              set(best, bitselect(get(value), get(best), get(isGreater))),
              set(bestAt, bitselect(addI32x4(splatI32(get(pixel)), constI32x4([0, 1, 2, 3])), get(bestAt), get(isGreater))),
              set(pixel, add(get(pixel), get(p.channels))),
            ),
          ),
          set(dyIndex, nhwc(get(n), get(i), get(j), get(c), get(p.outHeight), get(p.outWidth), get(p.channels))),
          ...scatterLane(0),
          ...scatterLane(1),
          ...scatterLane(2),
          ...scatterLane(3),
        ),
      ),
    ),
  );
  return { builder, body };
}

const maxPoolGradWasm = wasmKernel<MaxPoolGradAttrs>((inputs, attrs, scope) => {
  const x = input(inputs, 'input');
  const dy = input(inputs, 'dy');
  const g = poolGeometry(x.shape as Shape4, attrs.filterSize, attrs.strides, attrs.pad, attrs.dimRoundingMode);
  const dx = scope.zeros(x.shape);
  const simd = g.inChannels % 4 === 0 ? simdLoop(scope.backend, 'maxPoolGrad', maxPoolGradSimd) : null;
  if (simd) runOnTensors(scope.backend, simd, [x, dy, dx], g);
  else maxPoolGradLoop(scope.f32(x), scope.f32(dy), scope.f32(dx), g);
  return dx;
});

const avgPoolGradWasm = wasmKernel<AvgPoolGradAttrs>((inputs, attrs, scope) => {
  const x = input(inputs, 'input');
  const dy = input(inputs, 'dy');
  const g = poolGeometry(x.shape as Shape4, attrs.filterSize, attrs.strides, attrs.pad);
  // Spread dy/count over each window: the input gradient of a depthwise conv with a filter of ones.
  const factors = inverseWindowCounts(g);
  const ones = scope.empty([g.filterHeight, g.filterWidth, g.inChannels, 1]);
  scope.f32(ones).fill(1);
  const simd = g.inChannels % 4 === 0 ? simdLoop(scope.backend, 'scaleByPosition', scaleByPositionSimd) : null;
  const scaled = scope.empty(dy.shape);
  if (simd) {
    const factorsOnHeap = scope.empty([factors.length]);
    scope.f32(factorsOnHeap).set(factors);
    const address = (info: TensorInfo) => heapAddress(scope.backend, info);
    simd(address(dy), address(scaled), address(factorsOnHeap), g.batch, factors.length, g.inChannels);
  } else {
    scaleByPositionLoop(scope.f32(dy), scope.f32(scaled), factors, g.inChannels);
  }
  const dx = depthwiseInputGrad(scope, scaled, ones, g);
  // Only padding wider than the window (windows wholly outside the input) is not handled.
  if (!dx) throw new Error(`${AvgPoolGrad}: explicit padding wider than the window is not supported`);
  return dx;
});

const maxPoolGradCpu = cpuKernel<MaxPoolGradAttrs>((inputs, attrs, cpu) => {
  const x = input(inputs, 'input');
  const g = poolGeometry(x.shape as Shape4, attrs.filterSize, attrs.strides, attrs.pad, attrs.dimRoundingMode);
  const dx = new Float32Array(cpu.f32(x).length);
  maxPoolGradLoop(cpu.f32(x), cpu.f32(input(inputs, 'dy')), dx, g);
  return cpu.output(x.shape, dx);
});

const avgPoolGradCpu = cpuKernel<AvgPoolGradAttrs>((inputs, attrs, cpu) => {
  const x = input(inputs, 'input');
  const g = poolGeometry(x.shape as Shape4, attrs.filterSize, attrs.strides, attrs.pad);
  const dx = new Float32Array(cpu.f32(x).length);
  avgPoolGradLoop(cpu.f32(input(inputs, 'dy')), dx, g);
  return cpu.output(x.shape, dx);
});

export const poolKernels: KernelConfig[] = [
  { kernelName: MaxPoolGrad, backendName: 'wasm', kernelFunc: maxPoolGradWasm },
  { kernelName: AvgPoolGrad, backendName: 'wasm', kernelFunc: avgPoolGradWasm },
  { kernelName: MaxPoolGrad, backendName: 'cpu', kernelFunc: maxPoolGradCpu },
  { kernelName: AvgPoolGrad, backendName: 'cpu', kernelFunc: avgPoolGradCpu },
];
