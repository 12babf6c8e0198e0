/*
 * Gradients of depthwise conv2d with channel multiplier 1 (the first half of a separable conv).
 * wasm: stock has neither. Both are SIMD loops over NHWC tensors in place (wasm-asm.ts), four
 * channels at a time, filters up to 8 wide: about as fast as XNNPACK's forward depthwise conv at
 * 3×3, faster at 5×5, and with no zero-dilated dy at stride 2. Other shapes: the input gradient
 * becomes a depthwise conv of the backend (flipped filter), the filter gradient a plain-JS loop.
 * cpu: the filter gradient as a direct loop; stock cpu's takes seconds at training sizes.
 */
import tf = require('@tensorflow/tfjs-core');
import type {
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  KernelConfig,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { dilateByStride } from './conv.js';
import { cpuKernel } from './cpu-backend.js';
import { depthwiseGeometry, explicitPadding, transposedConvPadding } from './geometry.js';
import type { ConvGeometry, Shape4 } from './geometry.js';
import { flipFilter, input } from './layout.js';
import {
  FunctionBuilder,
  add,
  addF32x4,
  at,
  get,
  i32,
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
  storeV128,
  sub,
} from './wasm-asm.js';
import type { Code, Local } from './wasm-asm.js';
import { wasmKernel } from './wasm-backend.js';
import type { WasmScope } from './wasm-backend.js';
import { GEOMETRY_PARAMS, runOnTensors, simdLoop, tapColumns } from './wasm-simd.js';
import type { SimdLoop, SimdLoopDefinition } from './wasm-simd.js';

const { DepthwiseConv2dNativeBackpropFilter, DepthwiseConv2dNativeBackpropInput } = tf;

/** Widest filter the SIMD loops take: a row of taps is kept in registers. */
const MAX_SIMD_FILTER_WIDTH = 8;

interface TapSpan {
  /** Taps b₀ … b₀ + taps − 1 of the filter row, handled together. */
  taps: number;
  /** Byte address of x (or dx) under tap b₀ at the span's first column, advancing by `inputStep`. */
  inputAddress: Local;
  inputStep: Local;
  /** Byte address of dy at the span's first column, advancing by `pixelBytes`. */
  dyAddress: Local;
  pixelBytes: Local;
  /** Byte address of filter (or dW) [a, b₀, c]. */
  tapAddress: Local;
  /** Byte offset of tap b₀ + t from tap b₀, in the input row and in the filter row alike. */
  tapOffset: (t: number) => Code;
  /** Loops over the span's output columns. */
  columns: (...body: Code[]) => Code;
}

/**
 * The loop nest both depthwise gradients share, over NHWC tensors in place, four channels at a
 * time (channels % 4 == 0), for filters `filterWidth` wide: for each output row (n, y), each tap
 * row a that lands inside the input and each channel group c, `perSpan` runs along the output
 * columns: once with all taps of the row together on the columns where every tap lands inside
 * the input (so the loops can keep them in registers), then tap by tap on the border columns.
 * Parameters: input (x or dx), dy, filter (dW or filter), then GEOMETRY_PARAMS.
 */
function depthwiseTapLoops(
  name: string,
  filterWidth: number,
  perSpan: (span: TapSpan, builder: FunctionBuilder) => Code[],
): SimdLoopDefinition {
  const builder = new FunctionBuilder(name, ['input', 'dy', 'filter', ...GEOMETRY_PARAMS]);
  const p = builder.params;
  const [n, y, a, b, c, column, rowStart, firstColumn, endColumn] = Array.from({ length: 9 }, () => builder.i32());
  const [interiorStart, interiorEnd, tapStart, tapEnd, scratch] = Array.from({ length: 5 }, () => builder.i32());
  const [inputAddress, inputStep, dyAddress, pixelBytes, tapAddress] = Array.from({ length: 5 }, () => builder.i32());
  const offsets = Array.from({ length: filterWidth }, () => builder.i32());
  const span = (taps: number): TapSpan => ({
    taps,
    inputAddress,
    inputStep,
    dyAddress,
    pixelBytes,
    tapAddress,
    tapOffset: (t) => get(offsets[t]),
    columns: (...body) => loop(column, get(firstColumn), get(endColumn), 1, ...body),
  });
  const [channels, stride, padLeft] = [get(p.channels), get(p.strideWidth), get(p.padLeft)];
  const inputRow = add(get(rowStart), get(a));
  const inputColumn = (tap: Code): Code => sub(add(mul(get(firstColumn), stride), tap), padLeft);
  /** Points the span's addresses at tap b₀ = `tap`, channel group c, column firstColumn. */
  const start = (tap: Code): Code[] => [
    set(inputAddress, at(get(p.input), nhwc(get(n), inputRow, inputColumn(tap), get(c), get(p.height), get(p.width), channels))),
    set(dyAddress, at(get(p.dy), nhwc(get(n), get(y), get(firstColumn), get(c), get(p.outHeight), get(p.outWidth), channels))),
    set(tapAddress, at(get(p.filter), nhwc(i32(0), get(a), tap, get(c), i32(0), get(p.filterWidth), channels))),
  ];
  const allTaps = span(filterWidth);
  const oneTap = span(1);
  const body = seq(
    set(pixelBytes, mul(channels, i32(4))),
    set(inputStep, mul(get(pixelBytes), stride)),
    ...offsets.map((offset, t) => set(offset, mul(get(pixelBytes), i32(t)))),
    loop(n, i32(0), get(p.batch), 1,
      loop(y, i32(0), get(p.outHeight), 1,
        set(rowStart, sub(mul(get(y), get(p.strideHeight)), get(p.padTop))),
        // tap rows a whose input row rowStart + a lies inside the input
        loop(a, max(sub(i32(0), get(rowStart)), i32(0)), min(get(p.filterHeight), sub(get(p.height), get(rowStart))), 1,
          // interior columns: from the first where tap 0 lands inside to the last where tap kw−1 does
          tapColumns(p, i32(0), interiorStart, tapEnd, scratch),
          tapColumns(p, i32(filterWidth - 1), tapStart, interiorEnd, scratch),
          set(interiorEnd, max(get(interiorEnd), get(interiorStart))),
          loop(c, i32(0), channels, 4,
            set(firstColumn, get(interiorStart)),
            set(endColumn, get(interiorEnd)),
            ...start(i32(0)),
            ...perSpan(allTaps, builder),
            // border columns, tap by tap: left of the interior, then right of it
            loop(b, i32(0), i32(filterWidth), 1,
              tapColumns(p, get(b), tapStart, tapEnd, scratch),
              set(firstColumn, get(tapStart)),
              set(endColumn, min(get(tapEnd), get(interiorStart))),
              ...start(get(b)),
              ...perSpan(oneTap, builder),
              set(firstColumn, max(get(tapStart), get(interiorEnd))),
              set(endColumn, get(tapEnd)),
              ...start(get(b)),
              ...perSpan(oneTap, builder),
            ),
          ),
        ),
      ),
    ),
  );
  return { builder, body };
}

/** Moves a span's addresses to its next output column. */
const advance = (span: TapSpan): Code[] => [
  set(span.inputAddress, add(get(span.inputAddress), get(span.inputStep))),
  set(span.dyAddress, add(get(span.dyAddress), get(span.pixelBytes))),
];

/**
 * dx += dy·filter, scattered to the input pixels each tap reads (stride 2 needs no zero-dilated
 * dy); the span's filter taps stay in registers. dx must be zeroed.
 */
function depthwiseInputGradSimd(filterWidth: number): SimdLoopDefinition {
  return depthwiseTapLoops('depthwiseInputGrad', filterWidth, (span, builder) => {
    const weights = Array.from({ length: span.taps }, () => builder.v128());
    const dy = builder.v128();
    const target = (t: number): Code => add(get(span.inputAddress), span.tapOffset(t));
    return [
      ...weights.map((weight, t) => set(weight, loadV128(add(get(span.tapAddress), span.tapOffset(t))))),
      span.columns(
        set(dy, loadV128(get(span.dyAddress))),
        ...weights.map((weight, t) => storeV128(target(t), addF32x4(loadV128(target(t)), mulF32x4(get(dy), get(weight))))),
        ...advance(span),
      ),
    ];
  });
}

/** dW += Σ x·dy; the span's sums stay in registers along the output row. dW must be zeroed. */
function depthwiseFilterGradSimd(filterWidth: number): SimdLoopDefinition {
  return depthwiseTapLoops('depthwiseFilterGrad', filterWidth, (span, builder) => {
    const sums = Array.from({ length: span.taps }, () => builder.v128());
    const dy = builder.v128();
    const tap = (t: number): Code => add(get(span.tapAddress), span.tapOffset(t));
    return [
      ...sums.map((sum) => set(sum, splatF32(0))),
      span.columns(
        set(dy, loadV128(get(span.dyAddress))),
        ...sums.map((sum, t) => set(sum, addF32x4(get(sum), mulF32x4(loadV128(add(get(span.inputAddress), span.tapOffset(t))), get(dy))))),
        ...advance(span),
      ),
      ...sums.map((sum, t) => storeV128(tap(t), addF32x4(loadV128(tap(t)), get(sum)))),
    ];
  });
}

/** The SIMD loop for this geometry, or null where it does not apply (channels % 4, filter width). */
function depthwiseLoop(
  scope: WasmScope,
  g: ConvGeometry,
  name: string,
  define: (filterWidth: number) => SimdLoopDefinition,
): SimdLoop | null {
  if (g.inChannels % 4 !== 0 || g.filterWidth > MAX_SIMD_FILTER_WIDTH) return null;
  return simdLoop(scope.backend, `${name}${g.filterWidth}`, () => define(g.filterWidth));
}

/** dW[a,b,c] += x[n,h,w,c]·dy[n,y,x,c] into a zeroed dW, with (h,w) the input pixel under tap (a,b) of output (y,x). */
function depthwiseFilterGradLoop(x: Float32Array, dy: Float32Array, dW: Float32Array, g: ConvGeometry): void {
  const { inHeight: height, inWidth: width, inChannels: channels, filterHeight: kh, filterWidth: kw } = g;
  for (let n = 0; n < g.batch; n++) {
    for (let y = 0; y < g.outHeight; y++) {
      for (let xo = 0; xo < g.outWidth; xo++) {
        const dyBase = ((n * g.outHeight + y) * g.outWidth + xo) * channels;
        for (let a = 0; a < kh; a++) {
          const h = y * g.strideHeight + a - g.padTop;
          if (h < 0 || h >= height) continue;
          for (let b = 0; b < kw; b++) {
            const w = xo * g.strideWidth + b - g.padLeft;
            if (w < 0 || w >= width) continue;
            const xBase = ((n * height + h) * width + w) * channels;
            const tap = (a * kw + b) * channels;
            for (let c = 0; c < channels; c++) dW[tap + c] += x[xBase + c] * dy[dyBase + c];
          }
        }
      }
    }
  }
}

/**
 * The input gradient of a depthwise conv (multiplier 1) of geometry g on wasm, or null for the
 * one case not handled: channels not a multiple of 4 with explicit padding wider than the filter.
 */
export function depthwiseInputGrad(scope: WasmScope, dy: TensorInfo, filter: TensorInfo, g: ConvGeometry): TensorInfo | null {
  const { batch, inHeight, inWidth, filterHeight: kh, filterWidth: kw, inChannels: channels } = g;
  const simd = depthwiseLoop(scope, g, 'depthwiseInputGrad', depthwiseInputGradSimd);
  if (simd) {
    const dx = scope.zeros([batch, inHeight, inWidth, channels]);
    runOnTensors(scope.backend, simd, [dx, dy, filter], g);
    return dx;
  }
  // Otherwise: a stride-1 depthwise conv of dy (zero-dilated by the stride) with the flipped filter.
  const padding = transposedConvPadding(g);
  if (!padding) return null;
  const flipped = scope.empty([kh, kw, channels, 1]);
  flipFilter(scope.f32(filter), scope.f32(flipped), kh, kw, channels, 1);
  return scope.depthwiseConv2d(dilateByStride(scope, dy, g, channels), flipped, explicitPadding(padding));
}

const depthwiseBackpropInputWasm = wasmKernel<DepthwiseConv2dNativeBackpropInputAttrs>((inputs, attrs, scope) => {
  const filter = input(inputs, 'filter');
  const g = depthwiseGeometry(DepthwiseConv2dNativeBackpropInput, attrs.inputShape, filter.shape as Shape4, attrs);
  const dx = depthwiseInputGrad(scope, input(inputs, 'dy'), filter, g);
  if (!dx)
    throw new Error(`${DepthwiseConv2dNativeBackpropInput}: explicit padding wider than the filter needs channels % 4 == 0`);
  return dx;
});

const depthwiseBackpropFilterWasm = wasmKernel<DepthwiseConv2dNativeBackpropFilterAttrs>((inputs, attrs, scope) => {
  const x = input(inputs, 'x');
  const dy = input(inputs, 'dy');
  const g = depthwiseGeometry(DepthwiseConv2dNativeBackpropFilter, x.shape as Shape4, attrs.filterShape, attrs);
  const dW = scope.zeros(attrs.filterShape);
  const simd = depthwiseLoop(scope, g, 'depthwiseFilterGrad', depthwiseFilterGradSimd);
  if (simd) runOnTensors(scope.backend, simd, [x, dy, dW], g);
  else depthwiseFilterGradLoop(scope.f32(x), scope.f32(dy), scope.f32(dW), g);
  return dW;
});

const depthwiseBackpropFilterCpu = cpuKernel<DepthwiseConv2dNativeBackpropFilterAttrs>((inputs, attrs, cpu) => {
  const x = input(inputs, 'x');
  const dy = input(inputs, 'dy');
  const g = depthwiseGeometry(DepthwiseConv2dNativeBackpropFilter, x.shape as Shape4, attrs.filterShape, attrs);
  const dW = new Float32Array(g.filterHeight * g.filterWidth * g.inChannels);
  depthwiseFilterGradLoop(cpu.f32(x), cpu.f32(dy), dW, g);
  return cpu.output(attrs.filterShape, dW);
});

export const depthwiseKernels: KernelConfig[] = [
  { kernelName: DepthwiseConv2dNativeBackpropInput, backendName: 'wasm', kernelFunc: depthwiseBackpropInputWasm },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, backendName: 'wasm', kernelFunc: depthwiseBackpropFilterWasm },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, backendName: 'cpu', kernelFunc: depthwiseBackpropFilterCpu },
];
