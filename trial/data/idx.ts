/*
 * The IDX format of MNIST-style datasets (big-endian header: two zero bytes, element type,
 * dimension count, one uint32 per dimension, then the raw elements), gzipped or plain, and
 * Fashion-MNIST on top of it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkLabels, readMaybeGzip } from './io.js';
import { DataError, type ImageDataset, type ImageSplits } from './types.js';

/** Where the Debian package dataset-fashion-mnist installs the four gzipped IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The element type code of unsigned bytes, the only one image datasets use. */
const UBYTE = 0x08;

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** An IDX file of unsigned bytes: its dimensions and its elements in row-major order. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads an IDX file of `ndims` dimensions of unsigned bytes; `what` names it in errors ("IDX3 images"). */
export function readIdx(path: string, ndims: number, what: string): IdxArray {
  const bytes = readMaybeGzip(path, what);
  const magic = (UBYTE << 8) | ndims;
  const header = 4 + 4 * ndims;
  const short = (): DataError =>
    new DataError(path, `${bytes.length} bytes is shorter than the ${header}-byte header, expected ${what}`);
  if (bytes.length < 4) throw short();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = view.getUint32(0);
  if (found !== magic) throw new DataError(path, `bad magic ${hex(found)}, expected ${hex(magic)} (${what})`);
  if (bytes.length < header) throw short();
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - header !== size)
    throw new DataError(path, `${bytes.length - header} data bytes, expected ${size} (${dims.join('×')} ${what})`);
  return { dims, data: bytes.subarray(header) };
}

/** Pairs an IDX3 image file with an IDX1 label file into a dataset of single-channel images. */
export function loadIdxImages(imagesPath: string, labelsPath: string, name: string, classes = 10): ImageDataset {
  const images = readIdx(imagesPath, 3, 'IDX3 images');
  const labels = readIdx(labelsPath, 1, 'IDX1 labels');
  const [count, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== count)
    throw new DataError(labelsPath, `${labels.dims[0]} labels, expected ${count} to match ${imagesPath}`);
  checkLabels(labelsPath, labels.data, classes, 'image');
  return { images: images.data, labels: labels.data, count, height, width, channels: 1, classes, name };
}

/** `<dir>/<base>.gz` if present, else `<dir>/<base>` (the gzip check is by content, not name). */
function findIdx(dir: string, base: string): string {
  const gz = join(dir, `${base}.gz`);
  return existsSync(gz) || !existsSync(join(dir, base)) ? gz : join(dir, base);
}

/** The IDX image and label files of one Fashion-MNIST split (`train` or `t10k`) in `dir`. */
export function fashionMnistFiles(dir: string, prefix: 'train' | 't10k'): { images: string; labels: string } {
  return { images: findIdx(dir, `${prefix}-images-idx3-ubyte`), labels: findIdx(dir, `${prefix}-labels-idx1-ubyte`) };
}

/**
 * Fashion-MNIST (60k train / 10k test, 28×28×1, 10 classes) from `dir`, by default the Debian
 * package's directory. The training set comes pre-shuffled, so its tail is a fair validation split.
 * The test split is read on first use: trials never touch it.
 */
export function loadFashionMnist(dir = FASHION_MNIST_DIR): ImageSplits {
  const load = (prefix: 'train' | 't10k'): ImageDataset => {
    const { images, labels } = fashionMnistFiles(dir, prefix);
    for (const path of [images, labels]) {
      if (!existsSync(path))
        throw new DataError(
          path,
          'not found, expected Fashion-MNIST IDX files ' +
            '(apt-get install dataset-fashion-mnist, or pass their directory)',
        );
    }
    return loadIdxImages(images, labels, 'fashion-mnist');
  };
  let test: ImageDataset | undefined;
  return {
    train: load('train'),
    get test() {
      return (test ??= load('t10k'));
    },
  };
}
