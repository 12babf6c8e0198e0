/*
 * a·b for a tall a [M, K] and a small b [K, N] as one wasm SIMD loop: the shape of a pointwise
 * conv done as a matmul over all pixels (M = batch·height·width, K and N = channels), forward
 * (x·W) and backward (dy·Wᵀ). XNNPACK's GEMM runs these shapes at 15–21 GFLOP/s here (with
 * N = 20 its 8-wide tiles are partly empty); this loop keeps a 4-row × 8-column block of the
 * result in registers and reads a in 4-wide steps along K.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
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
  mul,
  mulF32x4,
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
import { heapAddress, simdLoop } from './wasm-simd.js';
import type { SimdLoopDefinition } from './wasm-simd.js';

/** Largest b (elements) for the loop: it is re-read for every 4 rows of a, so it must stay in cache. */
const MAX_SMALL_OPERAND = 128 * 128;

function skinnyMatMulSimd(): SimdLoopDefinition {
  const builder = new FunctionBuilder('skinnyMatMul', ['a', 'b', 'c', 'rows', 'inner', 'cols']);
  const p = builder.params;
  const [row, col, k, aAddress, bAddress, aRowBytes, bRowBytes] = Array.from({ length: 7 }, () => builder.i32());
  const aRows = Array.from({ length: 4 }, () => builder.v128());
  const bVectors = [builder.v128(), builder.v128()];
  const lane = builder.v128();
  const sums = Array.from({ length: 8 }, () => builder.v128());

  /** c[row + r, col .. col + 4·vectors) = Σ_k a[row + r, k]·b[k, col ..], for r < rowCount. */
  const block = (rowCount: 1 | 4, vectors: 1 | 2): Code[] => {
    const cells = Array.from({ length: rowCount }, (_, r) => Array.from({ length: vectors }, (_, v) => ({ r, v, sum: sums[2 * r + v] })));
    const flatCells = cells.flat();
    const step: Code[] = [];
    for (let kk = 0; kk < 4; kk++) {
      // b[k + kk, col ..] times lane kk of each a row
      step.push(...bVectors.slice(0, vectors).map((vector, v) => set(vector, loadV128(get(bAddress), 16 * v))));
      step.push(set(bAddress, add(get(bAddress), get(bRowBytes))));
      for (let r = 0; r < rowCount; r++) {
        step.push(set(lane, shuffleF32(get(aRows[r]), get(aRows[r]), [kk, kk, kk, kk])));
        for (const { v, sum } of cells[r]) step.push(set(sum, addF32x4(get(sum), mulF32x4(get(lane), get(bVectors[v])))));
      }
    }
    const cAddress = (r: number): Code => at(get(p.c), add(mul(add(get(row), i32(r)), get(p.cols)), get(col)));
    return [
      ...flatCells.map(({ sum }) => set(sum, splatF32(0))),
      set(aAddress, at(get(p.a), mul(get(row), get(p.inner)))),
      set(bAddress, at(get(p.b), get(col))),
      loop(k, i32(0), get(p.inner), 4,
        ...aRows.slice(0, rowCount).map((vector, r) => set(vector, loadV128(add(get(aAddress), mul(i32(r), get(aRowBytes)))))),
        ...step,
        set(aAddress, add(get(aAddress), i32(16))),
      ),
      ...flatCells.map(({ r, v, sum }) => storeV128(cAddress(r), get(sum), 16 * v)),
    ];
  };

  /** All column blocks (pairs of vectors, then a single one if cols % 8 == 4) for rowCount rows. */
  const columns = (rowCount: 1 | 4): Code =>
    seq(
      loop(col, i32(0), sub(get(p.cols), i32(7)), 8, ...block(rowCount, 2)),
      when(lt(get(col), get(p.cols)), ...block(rowCount, 1)),
    );

  const body = seq(
    set(aRowBytes, mul(get(p.inner), i32(4))),
    set(bRowBytes, mul(get(p.cols), i32(4))),
    loop(row, i32(0), sub(get(p.rows), i32(3)), 4, columns(4)),
    // the last rows % 4 rows, one at a time
    loop(row, get(row), get(p.rows), 1, columns(1)),
  );
  return { builder, body };
}

/**
 * a·b for a [.., M, K] and b [.., K, N] (leading dims of size 1) by the SIMD loop; null where it
 * does not apply: batched operands, K or N not multiples of 4, or a b too big to stay in cache.
 */
export function simdSkinnyProduct(scope: WasmScope, a: TensorInfo, b: TensorInfo): TensorInfo | null {
  const [m, k] = a.shape.slice(-2);
  const [kb, n] = b.shape.slice(-2);
  const outer = [...a.shape.slice(0, -2), ...b.shape.slice(0, -2)];
  if (k !== kb || k % 4 !== 0 || n % 4 !== 0 || k * n > MAX_SMALL_OPERAND || outer.some((size) => size !== 1)) return null;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const simd = simdLoop(scope.backend, 'skinnyMatMul', skinnyMatMulSimd);
  if (!simd) return null;
  const rank = Math.max(a.shape.length, b.shape.length);
  const product = scope.empty([...Array<number>(rank - 2).fill(1), m, n]);
  simd(heapAddress(scope.backend, a), heapAddress(scope.backend, b), heapAddress(scope.backend, product), m, k, n);
  return product;
}
