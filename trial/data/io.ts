/*
 * Whole-file reads for the loaders, turning every I/O or gzip failure into one DataError line.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { takePrefetchedFile } from '../prefetch.js';
import { DataError } from './types.js';

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

/**
 * Output chunk for gunzipping `gz`: its footer's size of the plain data (ISIZE, the size mod 2^32),
 * so that a whole file inflates into one buffer instead of 16 KiB chunks joined at the end
 * (Fashion-MNIST's training images: 135 → 110 ms). Capped, since a corrupt footer may say anything;
 * a wrong size only costs speed.
 */
function outputChunkSize(gz: Uint8Array): number {
  const isize = new DataView(gz.buffer, gz.byteOffset, gz.byteLength).getUint32(gz.byteLength - 4, true);
  return Math.min(Math.max(isize, 64), 1 << 28);
}

/** Like readBytes, but gunzips a file that starts with the gzip magic bytes, whatever its name. */
export function readMaybeGzip(path: string, expected: string): Uint8Array {
  const ready = takePrefetchedFile(path);
  if (ready) return ready;
  const raw = readBytes(path, expected);
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  let plain: Buffer;
  try {
    plain = gunzipSync(raw, { chunkSize: outputChunkSize(raw) });
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
