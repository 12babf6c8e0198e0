/*
 * A prefetch thread (trial/prefetch.ts): runs the loaders' own reading and parsing on one job and
 * posts each result, its buffers transferred, not copied (a file with its byte histogram index, for
 * the channel statistics). Failures post no result. Then it stays for checks of the weight store's
 * data (trial/store-data-check.ts) until the process ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readMaybeGzip } from './data/io.js';
import { byteHistogramIndex } from './data/normalize.js';
import { loadCorpus } from './data/text.js';
import type { CheckMessage, Prefetched, PrefetchJob } from './prefetch.js';
import { checkStoreData } from './store-data-check.js';

/** `bytes` on a buffer of its own, which can be transferred (a Buffer may share a pooled one). */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

const post = (message: Prefetched, buffers: ArrayBuffer[]) => parentPort!.postMessage(message, buffers);
const job = workerData as PrefetchJob;

// Checks of weight store data, asked once the trial has read its store; they wait for the job.
parentPort!.on('message', ({ check, request }: CheckMessage) => post({ checked: check, result: checkStoreData(request) }, []));

if ('files' in job) {
  for (const path of job.files) {
    try {
      const bytes = owned(readMaybeGzip(path, 'a file to read ahead'));
      const histograms = byteHistogramIndex(bytes);
      post({ path, bytes, histograms }, [bytes.buffer as ArrayBuffer, histograms.buffer as ArrayBuffer]);
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
post({ done: true }, []);
