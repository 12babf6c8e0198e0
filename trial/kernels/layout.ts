/*
 * Backend-independent helpers on flat NHWC arrays (wasm heap views or cpu value arrays), used
 * to move between a strided convolution's output grid and its input grid.
 */
import type { NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The tensor named `name` among a kernel's inputs. */
export function input(inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const info = inputs[name];
  if (!info) throw new Error(`missing kernel input ${name}`);
  return info;
}

/** A strided grid inside a larger NHWC grid: cell (i, j) of the small one is pixel (i·s, j·s) of the large one. */
export interface StridedGrid {
  batch: number;
  channels: number;
  /** The small (strided) grid. */
  rows: number;
  cols: number;
  /** The large grid; it must contain every cell of the small one. */
  height: number;
  width: number;
  strideHeight: number;
  strideWidth: number;
}

function checkGrid(g: StridedGrid): void {
  if ((g.rows - 1) * g.strideHeight >= g.height || (g.cols - 1) * g.strideWidth >= g.width)
    throw new Error(`a ${g.rows}×${g.cols} grid with strides ${g.strideHeight}×${g.strideWidth} does not fit in ${g.height}×${g.width}`);
}

/** Writes small[n,i,j,:] to large[n, i·s, j·s, :]; other pixels of `large` are left as they are (callers pass zeros). */
export function scatterToGrid(small: Float32Array, large: Float32Array, g: StridedGrid): void {
  checkGrid(g);
  const { batch, channels: c, rows, cols, height, width } = g;
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) {
        const from = ((n * rows + i) * cols + j) * c;
        large.set(small.subarray(from, from + c), ((n * height + i * g.strideHeight) * width + j * g.strideWidth) * c);
      }
}

/** Reads small[n,i,j,:] = large[n, i·s, j·s, :]. */
export function gatherFromGrid(large: Float32Array, small: Float32Array, g: StridedGrid): void {
  checkGrid(g);
  const { batch, channels: c, rows, cols, height, width } = g;
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) {
        const from = ((n * height + i * g.strideHeight) * width + j * g.strideWidth) * c;
        small.set(large.subarray(from, from + c), ((n * rows + i) * cols + j) * c);
      }
}

/** Spatially flipped copy of an HWIO filter with its last two axes swapped (for transposed convs). */
export function flipFilter(filter: Float32Array, out: Float32Array, kh: number, kw: number, ci: number, co: number): void {
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const from = (a * kw + b) * ci * co;
      const to = ((kh - 1 - a) * kw + (kw - 1 - b)) * co * ci;
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) out[to + o * ci + i] = filter[from + i * co + o];
    }
  }
}
