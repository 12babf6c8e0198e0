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
import { rememberByteHistogramIndex } from './data/normalize.js';
import type { Corpus } from './data/types.js';
import type { DataChecker } from './shared-store.js';
import { checkStoreData, type DataCheckRequest, type DataCheckResult } from './store-data-check.js';

/** What the worker is asked to read: whole files (gunzipped when gzip), or a text corpus directory. */
export type PrefetchJob = { files: string[] } | { corpus: string };
/** One message from the worker: a file's plain bytes, a parsed corpus (absent when it failed), the end of its job, or a data check's result. */
export type Prefetched =
  | { path: string; bytes?: Uint8Array; histograms?: Uint32Array }
  | { corpus: string; result?: Corpus }
  | { done: true }
  | { checked: number; result: DataCheckResult };
/** A data check asked of the worker once its job is done (the request's bytes are shared memory). */
export interface CheckMessage {
  check: number;
  request: DataCheckRequest;
}

const files = new Map<string, Uint8Array>();
const corpora = new Map<string, Corpus>();

/**
 * A running read-ahead worker. It keeps the process alive while it reads or checks, and is left
 * idle (unreferenced) after, ready for a check of the weight store the trial loads meanwhile.
 */
class ReadAheadWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { request: DataCheckRequest; settle: (result: DataCheckResult) => void; fail: (error: unknown) => void }>();
  private nextCheck = 0;
  private jobDone = false;
  private gone = false;
  /** Settles when the job's results have arrived (or the worker failed). */
  readonly read: Promise<void>;

  constructor(job: PrefetchJob) {
    const worker = new Worker(compiledModuleUrl('./prefetch-worker.js', import.meta.url), { workerData: job });
    this.worker = worker;
    this.read = new Promise((done) => {
      worker.on('message', (message: Prefetched) => {
        if ('path' in message && message.bytes) {
          files.set(message.path, message.bytes);
          if (message.histograms) rememberByteHistogramIndex(message.bytes, message.histograms);
        }
        if ('corpus' in message && message.result) corpora.set(message.corpus, message.result);
        if ('checked' in message) {
          this.pending.get(message.checked)?.settle(message.result);
          this.pending.delete(message.checked);
        }
        if ('done' in message) {
          this.jobDone = true;
          done();
        }
        if (this.jobDone && this.pending.size === 0) worker.unref();
      });
      const end = () => {
        this.gone = true;
        // The bytes are shared: a check the worker did not finish is done here.
        for (const { request, settle, fail } of this.pending.values()) {
          try {
            settle(checkStoreData(request));
          } catch (error) {
            fail(error);
          }
        }
        this.pending.clear();
        done();
      };
      worker.on('error', end);
      worker.on('exit', end);
    });
  }

  /** The worker's check of `request`, or undefined when the worker is gone. */
  check(request: DataCheckRequest): Promise<DataCheckResult> | undefined {
    if (this.gone) return undefined;
    const check = this.nextCheck++;
    this.worker.ref();
    this.worker.postMessage({ check, request } satisfies CheckMessage);
    return new Promise((settle, fail) => this.pending.set(check, { request, settle, fail }));
  }
}

let latest: ReadAheadWorker | undefined;

function prefetch(job: PrefetchJob): Promise<void> {
  latest = new ReadAheadWorker(job);
  return latest.read;
}

/** Checks weight store data on the read-ahead worker, after its reading (undefined when there is none). */
export const checkOnReadAheadWorker: DataChecker = (request) => latest?.check(request);

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
