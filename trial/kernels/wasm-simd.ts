/*
 * Instantiates our SIMD loops (written with wasm-asm) against the wasm backend's memory, once
 * per function and memory, so they run on tensors in place. The loops are single-threaded even
 * on the multithreaded build (its memory is shared, and imported as such).
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { ConvGeometry } from './geometry.js';
import { add, assembleModule, div, ge, get, i32, max, min, select, seq, set, sub } from './wasm-asm.js';
import type { Code, FunctionBuilder, Local } from './wasm-asm.js';
import type { WasmBackend } from './wasm-backend.js';

/** An exported SIMD loop: all arguments are i32 (byte addresses or sizes). */
export type SimdLoop = (...args: number[]) => void;

export interface SimdLoopDefinition {
  builder: FunctionBuilder;
  body: Code;
}

const compiled = new WeakMap<WebAssembly.Memory, Map<string, SimdLoop>>();

/**
 * The loop bound to `backend`'s heap, or null if the backend does not expose its memory (a
 * future tfjs-backend-wasm build); callers then take their slower path.
 */
export function simdLoop(backend: WasmBackend, name: string, define: () => SimdLoopDefinition): SimdLoop | null {
  const memory = backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  let loops = compiled.get(memory);
  if (!loops) compiled.set(memory, (loops = new Map()));
  let loop = loops.get(name);
  if (!loop) {
    const { builder, body } = define();
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(assembleModule([{ name, ...builder.assemble(body) }], shared));
    loop = new WebAssembly.Instance(module, { env: { memory } }).exports[name] as SimdLoop;
    loops.set(name, loop);
  }
  return loop;
}

/** Byte address of a tensor on the heap. */
export function heapAddress(backend: WasmBackend, info: TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset;
}

/** Sizes passed (after three tensor addresses) to the loops over a conv/pool geometry. */
export const GEOMETRY_PARAMS = [
  'batch',
  'height',
  'width',
  'channels',
  'outHeight',
  'outWidth',
  'filterHeight',
  'filterWidth',
  'strideHeight',
  'strideWidth',
  'padTop',
  'padLeft',
] as const;

/**
 * Sets [first, end) to the output columns whose filter tap column `b` reads inside the input,
 * i.e. column·stride + b − padLeft ∈ [0, width): from ⌈(padLeft − b)/stride⌉ up to
 * ⌊(width − 1 + padLeft − b)/stride⌋, clipped to the output. `scratch` is a spare i32 local.
 */
export function tapColumns(p: Record<string, Local>, b: Code, first: Local, end: Local, scratch: Local): Code {
  const [stride, padLeft] = [get(p.strideWidth), get(p.padLeft)];
  return seq(
    set(first, max(div(add(sub(padLeft, b), sub(stride, i32(1))), stride), i32(0))),
    set(scratch, sub(add(sub(get(p.width), i32(1)), padLeft), b)),
    set(end, min(select(add(div(get(scratch), stride), i32(1)), i32(0), ge(get(scratch), i32(0))), get(p.outWidth))),
  );
}

/** Runs a loop taking three tensors, then GEOMETRY_PARAMS, then `extra` sizes. */
export function runOnTensors(
  backend: WasmBackend,
  loop: SimdLoop,
  tensors: [TensorInfo, TensorInfo, TensorInfo],
  g: ConvGeometry,
  ...extra: number[]
): void {
  loop(
    ...tensors.map((info) => heapAddress(backend, info)),
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    ...extra,
  );
}
