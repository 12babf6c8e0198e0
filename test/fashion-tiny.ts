/*
 * A tiny real dataset for the CNN tests: a class-balanced Fashion-MNIST sample (trial/data),
 * averaged 2×2 down to 14×14 so that steps stay cheap, normalised to zero mean and unit variance.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadFashionMnist, tinySubset } from '../trial/data/index.js';
import type { Batch } from '../trial/model.js';

export interface TinyImages {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  count: number;
}

/** `perClass` training images per class, 14×14×1. */
export function fashionTiny(perClass: number): TinyImages {
  const ds = tinySubset(loadFashionMnist().train, perClass);
  const side = 14;
  const pixels = new Float32Array(ds.count * side * side);
  for (let n = 0; n < ds.count; n++)
    for (let i = 0; i < side; i++)
      for (let j = 0; j < side; j++) {
        const at = (r: number, c: number) => ds.images[n * 784 + r * 28 + c]!;
        pixels[(n * side + i) * side + j] = (at(2 * i, 2 * j) + at(2 * i + 1, 2 * j) + at(2 * i, 2 * j + 1) + at(2 * i + 1, 2 * j + 1)) / 4;
      }
  let mean = 0;
  for (const p of pixels) mean += p / pixels.length;
  let variance = 0;
  for (const p of pixels) variance += (p - mean) ** 2 / pixels.length;
  const std = Math.sqrt(variance);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (pixels[i]! - mean) / std;
  return {
    x: tf.tensor4d(pixels, [ds.count, side, side, 1]),
    y: tf.tensor1d(Int32Array.from(ds.labels), 'int32'),
    count: ds.count,
  };
}

/** The `k`-th batch of `size` images, cycling through the data (its order is already mixed by class). */
export function batchAt(data: TinyImages, k: number, size: number): Batch {
  const start = (k * size) % (data.count - size + 1);
  return { x: tf.slice(data.x, [start, 0, 0, 0], [size, -1, -1, -1]), y: tf.slice(data.y, [start], [size]) };
}
