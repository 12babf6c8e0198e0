/*
 * Fast transposes on wasm. The stock Transpose kernel moves one scalar at a time (≈5 ms for a
 * [50176,20] matrix, as much as the matmul it feeds); ours moves 4×4 blocks with SIMD shuffles.
 * Used where our kernels need a transposed operand: BatchMatMul with transposeA/transposeB and
 * the filter gradients of convolutions. Shapes whose transposed sides are not multiples of 4
 * go to the stock kernel.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { FunctionBuilder, add, at, get, i32, loadV128, loop, min, mul, seq, set, shuffleF32, storeV128 } from './wasm-asm.js';
import type { Code } from './wasm-asm.js';
import type { WasmScope } from './wasm-backend.js';
import { heapAddress, simdLoop } from './wasm-simd.js';
import type { SimdLoopDefinition } from './wasm-simd.js';

/**
 * For each of `count` matrices: out[b][c][r] = in[b][r][c], rows and cols multiples of 4.
 * Strides are in elements; the batch stride lets the matrices interleave (e.g. [A,B,C]→[C,B,A]).
 */
const TILE = 64;

function transposeSimd(): SimdLoopDefinition {
  const builder = new FunctionBuilder('transpose', [
    'source',
    'target',
    'count',
    'rows',
    'cols',
    'sourceBatchStride',
    'targetBatchStride',
    'sourceRowStride',
    'targetRowStride',
  ]);
  const p = builder.params;
  const [batch, rowTile, colTile, row, col, from, to, fromStep, toStep] = Array.from({ length: 9 }, () => builder.i32());
  const sourceIndex = add(add(mul(get(batch), get(p.sourceBatchStride)), mul(get(row), get(p.sourceRowStride))), get(col));
  const targetIndex = add(add(mul(get(batch), get(p.targetBatchStride)), mul(get(col), get(p.targetRowStride))), get(row));
  const [r0, r1, r2, r3, t0, t1, t2, t3] = Array.from({ length: 8 }, () => builder.v128());
  const rowAt = (k: number): Code => loadV128(add(get(from), mul(get(fromStep), i32(k))));
  const storeRow = (k: number, value: Code): Code => storeV128(add(get(to), mul(get(toStep), i32(k))), value);
  const body = seq(
    set(fromStep, mul(get(p.sourceRowStride), i32(4))),
    set(toStep, mul(get(p.targetRowStride), i32(4))),
    loop(batch, i32(0), get(p.count), 1,
      // TILE×TILE tiles, so that the strided side of the copy stays in cache
      loop(rowTile, i32(0), get(p.rows), TILE,
        loop(colTile, i32(0), get(p.cols), TILE,
          loop(row, get(rowTile), min(add(get(rowTile), i32(TILE)), get(p.rows)), 4,
            loop(col, get(colTile), min(add(get(colTile), i32(TILE)), get(p.cols)), 4,
              set(from, at(get(p.source), sourceIndex)),
              set(to, at(get(p.target), targetIndex)),
              set(r0, rowAt(0)),
              set(r1, rowAt(1)),
              set(r2, rowAt(2)),
              set(r3, rowAt(3)),
              // 4×4 block transpose: interleave row pairs, then pair up the halves
              set(t0, shuffleF32(get(r0), get(r1), [0, 4, 1, 5])),
              set(t1, shuffleF32(get(r0), get(r1), [2, 6, 3, 7])),
              set(t2, shuffleF32(get(r2), get(r3), [0, 4, 1, 5])),
              set(t3, shuffleF32(get(r2), get(r3), [2, 6, 3, 7])),
              storeRow(0, shuffleF32(get(t0), get(t2), [0, 1, 4, 5])),
              storeRow(1, shuffleF32(get(t0), get(t2), [2, 3, 6, 7])),
              storeRow(2, shuffleF32(get(t1), get(t3), [0, 1, 4, 5])),
              storeRow(3, shuffleF32(get(t1), get(t3), [2, 3, 6, 7])),
            ),
          ),
        ),
      ),
    ),
  );
  return { builder, body };
}

interface Layout {
  count: number;
  rows: number;
  cols: number;
  sourceBatchStride: number;
  targetBatchStride: number;
  sourceRowStride: number;
  targetRowStride: number;
}

function transposeWith(scope: WasmScope, x: TensorInfo, outShape: number[], layout: Layout, perm: number[]): TensorInfo {
  const simd =
    x.dtype === 'float32' && layout.rows % 4 === 0 && layout.cols % 4 === 0
      ? simdLoop(scope.backend, 'transpose', transposeSimd)
      : null;
  if (!simd) return scope.transpose(x, perm);
  const out = scope.empty(outShape);
  const b = scope.backend;
  simd(
    heapAddress(b, x),
    heapAddress(b, out),
    layout.count,
    layout.rows,
    layout.cols,
    layout.sourceBatchStride,
    layout.targetBatchStride,
    layout.sourceRowStride,
    layout.targetRowStride,
  );
  return out;
}

/** x with its last two axes swapped (batched matrix transpose). */
export function swapLastAxes(scope: WasmScope, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const rows = x.shape[rank - 2];
  const cols = x.shape[rank - 1];
  const perm = x.shape.map((_, axis) => axis);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  const outShape = perm.map((axis) => x.shape[axis]);
  const count = x.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const matrix = rows * cols;
  const layout = { count, rows, cols, sourceBatchStride: matrix, targetBatchStride: matrix, sourceRowStride: cols, targetRowStride: rows };
  return transposeWith(scope, x, outShape, layout, perm);
}

/** An NHWC tensor as [C,H,W,N] (channels become the batch, examples the channels). */
export function channelsToBatch(scope: WasmScope, x: TensorInfo): TensorInfo {
  const [n, h, w, c] = x.shape;
  const pixels = h * w;
  // For each pixel, the [n, c] matrix of its values becomes [c, n].
  const layout = {
    count: pixels,
    rows: n,
    cols: c,
    sourceBatchStride: c,
    targetBatchStride: n,
    sourceRowStride: pixels * c,
    targetRowStride: pixels * n,
  };
  return transposeWith(scope, x, [c, h, w, n], layout, [3, 1, 2, 0]);
}
