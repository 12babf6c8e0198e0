/*
 * Gradients of conv2d (NHWC, dilation 1).
 * wasm: the input gradient becomes one forward conv of the backend (XNNPACK; a matmul for
 * 1×1), the filter gradient a SIMD loop (filter-grad.ts; for channel counts that are not
 * multiples of 4, an XNNPACK conv or matmul plus transposes). Stock wasm has no
 * Conv2DBackpropFilter, and its Conv2DBackpropInput is a scalar loop (≈150 ms for a 3×3 20→20
 * conv at batch 64, ten times the forward conv).
 * cpu: the filter gradient as a direct loop; stock cpu's takes tens of seconds at training sizes.
 */
import tf = require('@tensorflow/tfjs-core');
import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  KernelConfig,
  NamedAttrMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { cpuKernel } from './cpu-backend.js';
import { simdConvFilterGrad } from './filter-grad.js';
import { convGeometry, explicitPadding, filterGradPadding, transposedConvPadding } from './geometry.js';
import type { ConvGeometry, Shape4 } from './geometry.js';
import { flipFilter, gatherFromGrid, input, scatterToGrid } from './layout.js';
import type { StridedGrid } from './layout.js';
import { requireStockKernel } from './registry.js';
import { channelsToBatch, swapLastAxes } from './transpose.js';
import { reshaped, wasmKernel } from './wasm-backend.js';
import type { WasmScope } from './wasm-backend.js';

const { Conv2DBackpropFilter, Conv2DBackpropInput } = tf;

/** A 1×1 conv without padding is a matmul over the pixels of its strided grid. */
function isPointwise(g: ConvGeometry): boolean {
  return g.filterHeight === 1 && g.filterWidth === 1 && g.padTop === 0 && g.padLeft === 0;
}

/** Whether the strided grid of the conv's outputs covers every input pixel (stride 1, no cropping). */
function gridIsWholeInput(g: ConvGeometry): boolean {
  return g.outHeight === g.inHeight && g.outWidth === g.inWidth;
}

/** The conv's output grid inside its input grid (unpadded: output (i, j) reads pixel (i·s, j·s)). */
function strideGrid(g: ConvGeometry, channels: number): StridedGrid {
  return {
    batch: g.batch,
    channels,
    rows: g.outHeight,
    cols: g.outWidth,
    height: g.inHeight,
    width: g.inWidth,
    strideHeight: g.strideHeight,
    strideWidth: g.strideWidth,
  };
}

/** dy zero-dilated by the stride, so that a stride-1 conv can compute a strided conv's input gradient. */
export function dilateByStride(scope: WasmScope, dy: TensorInfo, g: ConvGeometry, channels: number): TensorInfo {
  if (g.strideHeight === 1 && g.strideWidth === 1) return dy;
  const height = (g.outHeight - 1) * g.strideHeight + 1;
  const width = (g.outWidth - 1) * g.strideWidth + 1;
  const dilated = scope.zeros([g.batch, height, width, channels]);
  scatterToGrid(scope.f32(dy), scope.f32(dilated), { ...strideGrid(g, channels), height, width });
  return dilated;
}

const conv2DBackpropInputWasm = wasmKernel<Conv2DBackpropInputAttrs>((inputs, attrs, scope) => {
  const dy = input(inputs, 'dy');
  const filter = input(inputs, 'filter');
  const { inputShape, strides, pad, dimRoundingMode } = attrs;
  const g =
    attrs.dataFormat === 'NHWC'
      ? convGeometry(Conv2DBackpropInput, inputShape, filter.shape as Shape4, strides, pad, dimRoundingMode, 'NHWC')
      : null;
  const flippedPadding = g && transposedConvPadding(g);
  if (!g || !flippedPadding) {
    // NCHW or paddings wider than the filter: rare, and the stock kernel handles them.
    const stock = requireStockKernel(Conv2DBackpropInput, 'wasm');
    return scope.runFunc(stock.kernelFunc, inputs, attrs as unknown as NamedAttrMap);
  }
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = g;
  const flipped = scope.empty([kh, kw, co, ci]);
  flipFilter(scope.f32(filter), scope.f32(flipped), kh, kw, ci, co);
  if (isPointwise(g)) {
    const pixels = g.batch * g.outHeight * g.outWidth;
    const product = scope.matMul(reshaped(dy, [pixels, co]), reshaped(flipped, [co, ci]));
    if (gridIsWholeInput(g)) return reshaped(product, attrs.inputShape);
    const dx = scope.zeros(attrs.inputShape);
    scatterToGrid(scope.f32(product), scope.f32(dx), strideGrid(g, ci));
    return dx;
  }
  return scope.conv2d(dilateByStride(scope, dy, g, co), flipped, explicitPadding(flippedPadding));
});

/** The geometry of a Conv2DBackpropFilter call, the same for both backends. */
function filterGradGeometry(inputShape: Shape4, attrs: Conv2DBackpropFilterAttrs): ConvGeometry {
  return convGeometry(Conv2DBackpropFilter, inputShape, attrs.filterShape, attrs.strides, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
}

const conv2DBackpropFilterWasm = wasmKernel<Conv2DBackpropFilterAttrs>((inputs, attrs, scope) => {
  const x = input(inputs, 'x');
  const dy = input(inputs, 'dy');
  const g = filterGradGeometry(x.shape as Shape4, attrs);
  const direct = simdConvFilterGrad(scope, x, dy, g, attrs.filterShape);
  if (direct) return direct;
  // Channel counts that are not multiples of 4 (e.g. a stem reading 1 or 3 image channels):
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = g;
  const pixels = g.batch * g.outHeight * g.outWidth;
  if (isPointwise(g)) {
    // dW = xᵀ·dy over the pixels the conv read. The explicit transpose is the fast layout on
    // wasm (BatchMatMul with transposeA is several times slower).
    let read = x;
    if (!gridIsWholeInput(g)) {
      read = scope.empty([g.batch, g.outHeight, g.outWidth, ci]);
      gatherFromGrid(scope.f32(x), scope.f32(read), strideGrid(g, ci));
    }
    const readT = swapLastAxes(scope, reshaped(read, [pixels, ci]));
    return reshaped(scope.matMul(readT, reshaped(dy, [pixels, co])), attrs.filterShape);
  }
  // dW[a,b,i,o] = Σ_{n,y,x} x[n, a+y·s−pt, b+x·s−pl, i]·dy[n,y,x,o]: a conv whose batch is the input
  // channel, whose channels are the examples, and whose filter is dy, dilated by the stride.
  const pad = filterGradPadding(g);
  const xByChannel = channelsToBatch(scope, x);
  const dyAsFilter = scope.transpose(dy, [1, 2, 0, 3]);
  const byChannel = scope.conv2d(xByChannel, dyAsFilter, explicitPadding(pad), [g.strideHeight, g.strideWidth]);
  const dW = scope.empty(attrs.filterShape);
  const source = scope.f32(byChannel);
  const target = scope.f32(dW);
  const rows = kh + pad.extraRows;
  const cols = kw + pad.extraCols;
  for (let i = 0; i < ci; i++) {
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const from = ((i * rows + a) * cols + b) * co;
        target.set(source.subarray(from, from + co), ((a * kw + b) * ci + i) * co);
      }
    }
  }
  return dW;
});

/**
 * dW[a,b,i,o] += x[n,h,w,i]·dy[n,y,x,o] into a zeroed dW, with (h,w) the input pixel under tap (a,b) of output
 * (y,x). Zero inputs (most of them after a ReLU) are skipped.
 */
function convFilterGradLoop(x: Float32Array, dy: Float32Array, dW: Float32Array, g: ConvGeometry): void {
  const { inHeight: height, inWidth: width, inChannels: ci, outChannels: co, filterHeight: kh, filterWidth: kw } = g;
  for (let n = 0; n < g.batch; n++) {
    for (let y = 0; y < g.outHeight; y++) {
      for (let xo = 0; xo < g.outWidth; xo++) {
        const dyBase = ((n * g.outHeight + y) * g.outWidth + xo) * co;
        for (let a = 0; a < kh; a++) {
          const h = y * g.strideHeight + a - g.padTop;
          if (h < 0 || h >= height) continue;
          for (let b = 0; b < kw; b++) {
            const w = xo * g.strideWidth + b - g.padLeft;
            if (w < 0 || w >= width) continue;
            const xBase = ((n * height + h) * width + w) * ci;
            const tapBase = (a * kw + b) * ci * co;
            for (let i = 0; i < ci; i++) {
              const value = x[xBase + i];
              if (value === 0) continue;
              const row = tapBase + i * co;
              for (let o = 0; o < co; o++) dW[row + o] += value * dy[dyBase + o];
            }
          }
        }
      }
    }
  }
}

const conv2DBackpropFilterCpu = cpuKernel<Conv2DBackpropFilterAttrs>((inputs, attrs, cpu) => {
  const x = input(inputs, 'x');
  const dy = input(inputs, 'dy');
  const g = filterGradGeometry(x.shape as Shape4, attrs);
  const dW = new Float32Array(attrs.filterShape.reduce((a, b) => a * b, 1));
  convFilterGradLoop(cpu.f32(x), cpu.f32(dy), dW, g);
  return cpu.output(attrs.filterShape, dW);
});

export const convKernels: KernelConfig[] = [
  { kernelName: Conv2DBackpropInput, backendName: 'wasm', kernelFunc: conv2DBackpropInputWasm },
  { kernelName: Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2DBackpropFilterWasm },
  { kernelName: Conv2DBackpropFilter, backendName: 'cpu', kernelFunc: conv2DBackpropFilterCpu },
];
