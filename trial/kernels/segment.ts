/*
 * UnsortedSegmentSum, the gradient of gather (embedding lookups, weight sharing by index).
 * Stock wasm has none; stock cpu's costs O(numSegments·N·D) (≈340 s for a 10000×200 embedding
 * and 1120 tokens). Ours is one O(N·D) scatter-add into zeros.
 */
import tf = require('@tensorflow/tfjs-core');
import type { KernelConfig, TensorInfo, UnsortedSegmentSumAttrs } from '@tensorflow/tfjs-core';
import { cpuKernel } from './cpu-backend.js';
import { input } from './layout.js';
import { wasmKernel } from './wasm-backend.js';

const { UnsortedSegmentSum, util } = tf;

type Values = Float32Array | Int32Array;

/**
 * Output shape: segmentIds covers the leading axes of x (usually one), each id naming the
 * segment its slice of x is added to.
 */
function segmentSumShape(x: TensorInfo, segmentIds: TensorInfo, numSegments: number): number[] {
  const idAxes = segmentIds.shape.length;
  if (!segmentIds.shape.every((size, axis) => size === x.shape[axis]))
    throw new Error(`${UnsortedSegmentSum}: segmentIds shape [${segmentIds.shape}] is not a prefix of x shape [${x.shape}]`);
  return [numSegments, ...x.shape.slice(idAxes)];
}

/** out[ids[r], :] += x[r, :]; ids outside [0, numSegments) are dropped, as in TensorFlow. */
function scatterAddRows(x: Values, ids: Int32Array, out: Values, numSegments: number): void {
  const rowSize = ids.length === 0 ? 0 : x.length / ids.length;
  out.fill(0);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (id < 0 || id >= numSegments) continue;
    const from = r * rowSize;
    const to = id * rowSize;
    for (let k = 0; k < rowSize; k++) out[to + k] += x[from + k];
  }
}

function checkDtype(x: TensorInfo): void {
  if (x.dtype !== 'float32' && x.dtype !== 'int32')
    throw new Error(`${UnsortedSegmentSum}: dtype ${x.dtype} is not supported`);
}

const unsortedSegmentSumWasm = wasmKernel<UnsortedSegmentSumAttrs>((inputs, attrs, scope) => {
  const x = input(inputs, 'x');
  const segmentIds = input(inputs, 'segmentIds');
  checkDtype(x);
  const out = scope.empty(segmentSumShape(x, segmentIds, attrs.numSegments), x.dtype);
  const values = (info: TensorInfo): Values => (info.dtype === 'int32' ? scope.i32(info) : scope.f32(info));
  scatterAddRows(values(x), scope.i32(segmentIds), values(out), attrs.numSegments);
  return out;
});

const unsortedSegmentSumCpu = cpuKernel<UnsortedSegmentSumAttrs>((inputs, attrs, cpu) => {
  const x = input(inputs, 'x');
  const segmentIds = input(inputs, 'segmentIds');
  checkDtype(x);
  const shape = segmentSumShape(x, segmentIds, attrs.numSegments);
  const size = util.sizeFromShape(shape);
  const xValues = x.dtype === 'int32' ? cpu.i32(x) : cpu.f32(x);
  const out = x.dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
  scatterAddRows(xValues, cpu.i32(segmentIds), out, attrs.numSegments);
  return cpu.output(shape, out);
});

export const segmentKernels: KernelConfig[] = [
  { kernelName: UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm },
  { kernelName: UnsortedSegmentSum, backendName: 'cpu', kernelFunc: unsortedSegmentSumCpu },
];
