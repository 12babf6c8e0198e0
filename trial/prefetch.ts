/*
 * Reading ahead on a worker thread. A trial starts this from its command line before its own
 * modules load (trial/read-ahead.ts): the worker reads, gunzips and parses the data while this
 * thread loads the trial, TensorFlow.js and the weight store, and the two overlap on two cores.
 * (A second worker loading the store as well made trials start slower: three threads on two
 * cores.) The loaders take each result once (takePrefetchedFile, takePrefetchedCorpus) and
 * otherwise read for themselves, so a failure on the worker is never reported there: the loader
 * meets it again and names it.
 */
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { compiledModuleUrl } from '../common/compiled-module.js';
import type { Corpus } from './data/types.js';

/** What the worker is asked to read: whole files (gunzipped when gzip), or a text corpus directory. */
export type PrefetchJob = { files: string[] } | { corpus: string };
/** One message from the worker: a file's plain bytes, or a parsed corpus (absent when it failed). */
export type Prefetched = { path: string; bytes?: Uint8Array } | { corpus: string; result?: Corpus };

const files = new Map<string, Uint8Array>();
const corpora = new Map<string, Corpus>();

function prefetch(job: PrefetchJob): Promise<void> {
  return new Promise((done) => {
    const worker = new Worker(compiledModuleUrl('./prefetch-worker.js', import.meta.url), { workerData: job });
    worker.on('message', (message: Prefetched) => {
      if ('path' in message && message.bytes) files.set(message.path, message.bytes);
      if ('corpus' in message && message.result) corpora.set(message.corpus, message.result);
    });
    worker.on('error', () => done());
    worker.on('exit', () => done());
  });
}

/** Reads (and gunzips) `paths` ahead. Never rejects. */
export const prefetchFiles = (paths: readonly string[]): Promise<void> => prefetch({ files: paths.map((path) => resolve(path)) });

/** Parses the only corpus in `dir` ahead (text.ts loadCorpus without a prefix). Never rejects. */
export const prefetchCorpus = (dir: string): Promise<void> => prefetch({ corpus: resolve(dir) });

/** The bytes read ahead for `path`, handed out once. */
export function takePrefetchedFile(path: string): Uint8Array | undefined {
  const key = resolve(path);
  const bytes = files.get(key);
  files.delete(key);
  return bytes;
}

/** The corpus parsed ahead for `dir`, handed out once. */
export function takePrefetchedCorpus(dir: string): Corpus | undefined {
  const key = resolve(dir);
  const corpus = corpora.get(key);
  corpora.delete(key);
  return corpus;
}
