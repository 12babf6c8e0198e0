/*
 * The filter gradient of a regular conv2d as one wasm SIMD loop over x and dy in place (NHWC):
 * dW[a,b,i,o] = Σ_{n,y,x} x[n, y·s+a−pt, x·s+b−pl, i]·dy[n,y,x,o].
 * XNNPACK can only compute it with dy (or x) as the packed weight operand of a GEMM or conv,
 * and packing that operand afresh on every call costs as much as the arithmetic (a [50176,36]
 * operand takes ≈12 ms to pack, then 5 ms to multiply). This loop packs nothing: it keeps a
 * 4(in)×8(out)-channel block of dW in registers along a chunk of an output row, and adds it to
 * dW once per chunk. The same loop is xᵀ·dy for the 1×1 case, hence for tall matmuls AᵀB.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { ConvGeometry } from './geometry.js';
import {
  FunctionBuilder,
  add,
  addF32x4,
  at,
  get,
  i32,
  loadV128,
  loop,
  lt,
  max,
  min,
  mul,
  mulF32x4,
  nhwc,
  seq,
  set,
  shuffleF32,
  splatF32,
  storeV128,
  sub,
  when,
} from './wasm-asm.js';
import type { Code } from './wasm-asm.js';
import type { WasmScope } from './wasm-backend.js';
import { GEOMETRY_PARAMS, runOnTensors, simdLoop, tapColumns } from './wasm-simd.js';
import type { SimdLoopDefinition } from './wasm-simd.js';

/** Output columns per register pass: the chunk's x and dy stay in L1 across all channel blocks. */
const CHUNK = 64;

function convFilterGradSimd(): SimdLoopDefinition {
  const builder = new FunctionBuilder('convFilterGrad', ['x', 'dy', 'dW', ...GEOMETRY_PARAMS, 'outChannels']);
  const p = builder.params;
  const [n, y, chunk, chunkEnd, a, b, inChannel, outChannel, column] = Array.from({ length: 9 }, () => builder.i32());
  const [rowStart, first, end, scratch, xAddress, dyAddress, xStep, dyStep] = Array.from({ length: 8 }, () => builder.i32());
  const [xs, dy0, dy1] = [builder.v128(), builder.v128(), builder.v128()];
  const lanes = Array.from({ length: 4 }, () => builder.v128());
  const sums = Array.from({ length: 8 }, () => builder.v128());
  const [channels, outChannels] = [get(p.channels), get(p.outChannels)];

  const inputRow = add(get(rowStart), get(a));
  const inputColumn = sub(add(mul(get(first), get(p.strideWidth)), get(b)), get(p.padLeft));
  const tap = add(mul(get(a), get(p.filterWidth)), get(b));
  /** Byte address of dW[a, b, inChannel + k, outChannel]. */
  const weight = (k: number): Code =>
    at(get(p.dW), nhwc(i32(0), tap, add(get(inChannel), i32(k)), get(outChannel), i32(0), channels, outChannels));

  /**
   * For 4 input channels × `vectors`·4 output channels: sum x·dy along the output columns
   * [first, end) of the row in sums[k][v] (k: input channel, v: output vector), then add the
   * block to dW.
   */
  const block = (vectors: 1 | 2): Code[] => {
    const pairs = Array.from({ length: 4 }, (_, k) => Array.from({ length: vectors }, (_, v) => ({ k, v, sum: sums[2 * k + v] }))).flat();
    const dyVectors = [dy0, dy1];
    return [
      set(xAddress, at(get(p.x), nhwc(get(n), inputRow, inputColumn, get(inChannel), get(p.height), get(p.width), channels))),
      set(dyAddress, at(get(p.dy), nhwc(get(n), get(y), get(first), get(outChannel), get(p.outHeight), get(p.outWidth), outChannels))),
      ...pairs.map(({ sum }) => set(sum, splatF32(0))),
      loop(column, get(first), get(end), 1,
        set(xs, loadV128(get(xAddress))),
        ...dyVectors.slice(0, vectors).map((vector, v) => set(vector, loadV128(get(dyAddress), 16 * v))),
        // lane k of x times the dy vectors
        ...lanes.map((lane, k) => set(lane, shuffleF32(get(xs), get(xs), [k, k, k, k]))),
        ...pairs.map(({ k, v, sum }) => set(sum, addF32x4(get(sum), mulF32x4(get(lanes[k]), get(dyVectors[v]))))),
        set(xAddress, add(get(xAddress), get(xStep))),
        set(dyAddress, add(get(dyAddress), get(dyStep))),
      ),
      ...pairs.map(({ k, v, sum }) => storeV128(weight(k), addF32x4(loadV128(weight(k), 16 * v), get(sum)), 16 * v)),
    ];
  };

  const body = seq(
    set(xStep, mul(mul(channels, i32(4)), get(p.strideWidth))),
    set(dyStep, mul(outChannels, i32(4))),
    loop(n, i32(0), get(p.batch), 1,
      loop(y, i32(0), get(p.outHeight), 1,
        set(rowStart, sub(mul(get(y), get(p.strideHeight)), get(p.padTop))),
        loop(chunk, i32(0), get(p.outWidth), CHUNK,
          set(chunkEnd, min(add(get(chunk), i32(CHUNK)), get(p.outWidth))),
          // tap rows a whose input row rowStart + a lies inside the input
          loop(a, max(sub(i32(0), get(rowStart)), i32(0)), min(get(p.filterHeight), sub(get(p.height), get(rowStart))), 1,
            loop(b, i32(0), get(p.filterWidth), 1,
              tapColumns(p, get(b), first, end, scratch),
              set(first, max(get(first), get(chunk))),
              set(end, min(get(end), get(chunkEnd))),
              loop(inChannel, i32(0), channels, 4,
                loop(outChannel, i32(0), sub(outChannels, i32(7)), 8, ...block(2)),
                // outChannels % 8 == 4: one block of a single vector is left
                when(lt(get(outChannel), outChannels), ...block(1)),
              ),
            ),
          ),
        ),
      ),
    ),
  );
  return { builder, body };
}

/**
 * dW (shape filterShape) by the SIMD loop, or null where it does not apply: channel counts
 * that are not multiples of 4, or a backend memory it cannot share.
 */
export function simdConvFilterGrad(
  scope: WasmScope,
  x: TensorInfo,
  dy: TensorInfo,
  g: ConvGeometry,
  filterShape: number[],
): TensorInfo | null {
  if (g.inChannels % 4 !== 0 || g.outChannels % 4 !== 0) return null;
  const simd = simdLoop(scope.backend, 'convFilterGrad', convFilterGradSimd);
  if (!simd) return null;
  const dW = scope.zeros(filterShape);
  runOnTensors(scope.backend, simd, [x, dy, dW], g, g.outChannels);
  return dW;
}

/**
 * Largest Aᵀ·B result (elements) sent to the SIMD loop. Measured with fresh operands, as in
 * training: the loop is 1.5–7× faster up to 400×800 (K from 32 to 50176); XNNPACK's GEMM
 * (with a transposed A and packing) ties at 2000×2000 and wins 1.5× at 1024×1024 (K=256).
 */
const MAX_TRANSPOSED_PRODUCT = 512 * 1024;

/**
 * aᵀ·b for tall a [K, M] and b [K, N] (any leading dims of size 1) by the SIMD loop, as the
 * filter gradient of a 1×1 conv over a 1×K image; null where it does not apply: batched
 * operands, M or N not multiples of 4, or results so large that XNNPACK's GEMM wins.
 */
export function simdTransposedProduct(scope: WasmScope, a: TensorInfo, b: TensorInfo): TensorInfo | null {
  const [k, m] = a.shape.slice(-2);
  const [kb, n] = b.shape.slice(-2);
  const outer = [...a.shape.slice(0, -2), ...b.shape.slice(0, -2)];
  if (k !== kb || outer.some((size) => size !== 1) || m * n > MAX_TRANSPOSED_PRODUCT) return null;
  const g: ConvGeometry = {
    batch: 1,
    inHeight: 1,
    inWidth: k,
    inChannels: m,
    outHeight: 1,
    outWidth: k,
    outChannels: n,
    filterHeight: 1,
    filterWidth: 1,
    strideHeight: 1,
    strideWidth: 1,
    padTop: 0,
    padLeft: 0,
  };
  const rank = Math.max(a.shape.length, b.shape.length);
  return simdConvFilterGrad(scope, a, b, g, [...Array<number>(rank - 2).fill(1), m, n]);
}
