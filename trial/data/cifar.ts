/*
 * CIFAR-10 binary batches (the "binary version" of the official release): each record is one
 * label byte followed by 3072 pixel bytes, the 1024 red, then green, then blue values of a
 * 32×32 image in row-major order. We convert planes to NHWC.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkLabels, readBytes } from './io.js';
import { DataError, type ImageDataset, type ImageSplits } from './types.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const RECORD = 1 + 3 * PLANE;
const TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const TEST_FILE = 'test_batch.bin';

/** Reads one binary batch file (10,000 records in the release; any positive count accepted). */
export function readCifarBatch(path: string): ImageDataset {
  const bytes = readBytes(path, `CIFAR-10 binary records of ${RECORD} bytes`);
  if (bytes.length === 0) throw new DataError(path, `empty, expected CIFAR-10 binary records of ${RECORD} bytes`);
  if (bytes.length % RECORD !== 0)
    throw new DataError(path, `${bytes.length} bytes is not a multiple of ${RECORD}-byte records`);
  const count = bytes.length / RECORD;
  const labels = new Uint8Array(count);
  const images = new Uint8Array(count * 3 * PLANE);
  for (let n = 0; n < count; n++) {
    const rec = n * RECORD;
    labels[n] = bytes[rec]!;
    const out = n * 3 * PLANE;
    for (let c = 0; c < 3; c++) {
      const plane = rec + 1 + c * PLANE;
      for (let p = 0; p < PLANE; p++) images[out + 3 * p + c] = bytes[plane + p]!;
    }
  }
  checkLabels(path, labels, 10, 'record');
  return { images, labels, count, height: SIDE, width: SIDE, channels: 3, classes: 10, name: 'cifar10' };
}

function concat(parts: ImageDataset[]): ImageDataset {
  const count = parts.reduce((s, p) => s + p.count, 0);
  const images = new Uint8Array(count * 3 * PLANE);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * 3 * PLANE);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { ...parts[0]!, images, labels, count };
}

/**
 * CIFAR-10 from `dir` holding data_batch_1..5.bin and test_batch.bin, or from its
 * `cifar-10-batches-bin` subdirectory (the layout the official tarball unpacks to).
 * Training batches are concatenated in order 1..5, so the reference's validation split
 * (the last 5000) is the tail of data_batch_5.
 */
export function loadCifar10(dir: string): ImageSplits {
  const nested = join(dir, 'cifar-10-batches-bin');
  const base = !existsSync(join(dir, TRAIN_FILES[0]!)) && existsSync(nested) ? nested : dir;
  return {
    train: concat(TRAIN_FILES.map((f) => readCifarBatch(join(base, f)))),
    test: readCifarBatch(join(base, TEST_FILE)),
  };
}
