/*
 * A prefetch thread (trial/prefetch.ts): runs the loaders' own reading and parsing on one job and
 * posts each result, its buffers transferred, not copied. Failures post no result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readMaybeGzip } from './data/io.js';
import { loadCorpus } from './data/text.js';
import type { Prefetched, PrefetchJob } from './prefetch.js';

/** `bytes` on a buffer of its own, which can be transferred (a Buffer may share a pooled one). */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

const post = (message: Prefetched, buffers: ArrayBuffer[]) => parentPort!.postMessage(message, buffers);
const job = workerData as PrefetchJob;

if ('files' in job) {
  for (const path of job.files) {
    try {
      const bytes = owned(readMaybeGzip(path, 'a file to read ahead'));
      post({ path, bytes }, [bytes.buffer as ArrayBuffer]);
    } catch {
      post({ path }, []);
    }
  }
} else {
  try {
    const result = loadCorpus(job.corpus);
    post({ corpus: job.corpus, result }, [result.train, result.valid, result.test].map((ids) => ids.buffer as ArrayBuffer));
  } catch {
    post({ corpus: job.corpus }, []);
  }
}
