/*
 * Tiny Fashion-MNIST for the tests, which must not need the real dataset (the Debian package
 * dataset-fashion-mnist; only data.test.ts checks the real files, where they are installed):
 * `fashionTinyDir()` writes the four gzipped IDX files, as the package lays them out, with
 * synthetic images, and the tests read them through the real loader (trial/data) — trials and the
 * embedded runner with `--data-dir`. `fashionTiny()` is a class-balanced sample of them, averaged
 * 2×2 down to 14×14 so that steps stay cheap, normalised to zero mean and unit variance.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '../common/random.js';
import { loadFashionMnist, tinySubset } from '../trial/data/index.js';
import type { Batch } from '../trial/model.js';

/** Images per class: train covers the largest per-class sample the tests take (16) and a validation tail. */
const TRAIN_PER_CLASS = 30;
const TEST_PER_CLASS = 10;
const SIDE = 28;

/** An IDX file of unsigned bytes: magic 0x0000080<dims>, one big-endian uint32 per dimension, the bytes. */
function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x800 | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/**
 * `perClass` images of each class, classes interleaved as in the real (shuffled) files. Class c is
 * a bright 5×10 block in cell c of a 5×2 grid, shifted by up to 2 pixels, on dark noise: as easy to
 * tell apart as a test that wants its loss to fall needs.
 */
function synthetic(perClass: number, random: Random): { images: Uint8Array; labels: Uint8Array } {
  const count = 10 * perClass;
  const images = new Uint8Array(count * SIDE * SIDE);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const c = n % 10;
    labels[n] = c;
    const top = 2 + 5 * (c % 5) + random.int(5) - 2;
    const left = 2 + 14 * Math.floor(c / 5) + random.int(5) - 2;
    for (let i = 0; i < SIDE; i++)
      for (let j = 0; j < SIDE; j++) {
        const inside = i >= top && i < top + 5 && j >= left && j < left + 10;
        images[(n * SIDE + i) * SIDE + j] = inside ? 180 + random.int(76) : random.int(40);
      }
  }
  return { images, labels };
}

let tinyDir: string | undefined;

/** A Fashion-MNIST directory (train 30, t10k 10 images per class), written once per test process. */
export function fashionTinyDir(): string {
  if (tinyDir) return tinyDir;
  const dir = mkdtempSync(join(tmpdir(), 'fashion-tiny-'));
  const random = new Random(28);
  for (const [prefix, perClass] of [['train', TRAIN_PER_CLASS], ['t10k', TEST_PER_CLASS]] as const) {
    const { images, labels } = synthetic(perClass, random);
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(idx([labels.length, SIDE, SIDE], images)));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(idx([labels.length], labels)));
  }
  tinyDir = dir;
  return dir;
}

export interface TinyImages {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  count: number;
}

/** `perClass` training images per class, 14×14×1. */
export function fashionTiny(perClass: number): TinyImages {
  const ds = tinySubset(loadFashionMnist(fashionTinyDir()).train, perClass);
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
