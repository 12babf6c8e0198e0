/*
 * Whole-file reads for the loaders, turning every I/O or gzip failure into one DataError line.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { DataError } from './types.js';

/** Files read and gunzipped ahead by `prefetchFiles`, each handed out once. */
const prefetched = new Map<string, Uint8Array>();

/** Reads and gunzips the files in workerData, posting each result back (its buffer transferred, not copied). */
const PREFETCH_WORKER = `
const { readFileSync } = require('node:fs');
const { gunzipSync } = require('node:zlib');
const { parentPort, workerData } = require('node:worker_threads');
for (const path of workerData) {
  try {
    const raw = readFileSync(path);
    const plain = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
    // A Buffer may share a pooled ArrayBuffer; only one of its own can be transferred.
    const owned = plain.byteOffset === 0 && plain.byteLength === plain.buffer.byteLength;
    const bytes = owned ? new Uint8Array(plain.buffer) : Uint8Array.from(plain);
    parentPort.postMessage({ path, bytes }, [bytes.buffer]);
  } catch {
    parentPort.postMessage({ path });
  }
}
`;

/**
 * Reads (and gunzips) `paths` on a worker thread, so that the loaders' synchronous reads find
 * them ready: a trial starts this before loading TensorFlow.js, and the two overlap on two cores
 * (zlib's own async mode would not: it needs event-loop turns that module loading does not give).
 * Never rejects: a file that fails here is read again by the loader, which reports it.
 */
export function prefetchFiles(paths: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const worker = new Worker(PREFETCH_WORKER, { eval: true, workerData: paths });
    worker.on('message', ({ path, bytes }: { path: string; bytes?: Uint8Array }) => {
      if (bytes) prefetched.set(path, bytes);
    });
    worker.on('error', () => resolve());
    worker.on('exit', () => resolve());
  });
}

/**
 * Reads a file as plain bytes (not a Buffer, whose `slice` would alias). `expected` says what
 * the file should be, for the error message.
 */
export function readBytes(path: string, expected: string): Uint8Array {
  let buffer: Buffer;
  try {
    buffer = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? (e as Error).message})`;
    throw new DataError(path, `${problem}, expected ${expected}`);
  }
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Like readBytes, but gunzips a file that starts with the gzip magic bytes, whatever its name. */
export function readMaybeGzip(path: string, expected: string): Uint8Array {
  const ready = prefetched.get(path);
  if (ready) {
    prefetched.delete(path);
    return ready;
  }
  const raw = readBytes(path, expected);
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  let plain: Buffer;
  try {
    plain = gunzipSync(raw);
  } catch (e) {
    throw new DataError(path, `truncated or corrupt gzip (${(e as Error).message}), expected ${expected}`);
  }
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
}

/** Checks that every label is a class index, naming the first one that is not. */
export function checkLabels(path: string, labels: Uint8Array, classes: number, unit: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes)
      throw new DataError(path, `label ${labels[i]} of ${unit} ${i} is out of range, expected 0..${classes - 1}`);
  }
}
