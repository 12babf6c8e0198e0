/*
 * BatchMatMul on wasm with transposed operands. The stock kernel handles transposeA/transposeB
 * in a slow path (4–7× slower than untransposed on the layer sizes of this project), so ours
 * transposes the flagged operands explicitly (SIMD, transpose.ts) and runs the stock
 * untransposed matmul. Two shapes go to our SIMD loops instead: aᵀ·b with a small result
 * (weight gradients such as xᵀ·dy over all pixels; filter-grad.ts), which unlike XNNPACK's GEMM
 * packs nothing on every call, and a·b with a tall a and a small b (pointwise convs over all
 * pixels; skinny-matmul.ts).
 */
import tf = require('@tensorflow/tfjs-core');
import type { BatchMatMulAttrs, KernelConfig } from '@tensorflow/tfjs-core';
import { simdTransposedProduct } from './filter-grad.js';
import { input } from './layout.js';
import { requireStockKernel } from './registry.js';
import { simdSkinnyProduct } from './skinny-matmul.js';
import { swapLastAxes } from './transpose.js';
import { wasmKernel } from './wasm-backend.js';

const { BatchMatMul } = tf;

const batchMatMulWasm = wasmKernel<BatchMatMulAttrs>((inputs, attrs, scope) => {
  const a = input(inputs, 'a');
  const b = input(inputs, 'b');
  // aᵀ·b with a long shared axis (weight gradients) packs nothing in the SIMD loop.
  const tall = attrs.transposeA && !attrs.transposeB && a.dtype === 'float32' ? simdTransposedProduct(scope, a, b) : null;
  if (tall) return tall;
  const left = attrs.transposeA ? swapLastAxes(scope, a) : a;
  const right = attrs.transposeB ? swapLastAxes(scope, b) : b;
  const skinny = simdSkinnyProduct(scope, left, right);
  if (skinny) return skinny;
  const stock = requireStockKernel(BatchMatMul, 'wasm');
  return scope.runFunc(stock.kernelFunc, { a: left, b: right }, { transposeA: false, transposeB: false });
});

export const matMulKernels: KernelConfig[] = [{ kernelName: BatchMatMul, backendName: 'wasm', kernelFunc: batchMatMulWasm }];
