/*
 * Chooses the fastest TensorFlow.js backend that actually loads here:
 * tensorflow (tfjs-node-gpu, then tfjs-node) > wasm > cpu, with a one-line warning per fallback.
 * wasm and cpu get our training kernels (trial/kernels) before first use: without them stock
 * wasm cannot train convolutions or embeddings at all, and both compute wrong pool gradients.
 *
 * TensorFlow.js is loaded with require (`import tf = require(…)` in every module, createRequire
 * here), never with an ESM import: Node would lex each CommonJS bundle imported from ESM for its
 * export names, 70 ms of every trial's start for tfjs-core and the wasm backend (bench trial-start).
 */
import { createRequire } from 'node:module';
import tf = require('@tensorflow/tfjs-core');
import { registerTrainingKernels } from './kernels/index.js';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  name: BackendName;
  /** Where it came from, e.g. "@tensorflow/tfjs-node" or "@tensorflow/tfjs-backend-wasm (simd, 1 thread)". */
  detail: string;
}

let active: BackendInfo | undefined;
const requireCommonJs = createRequire(import.meta.url);

export interface BackendOptions {
  /**
   * Models that will train at once on this machine: the replicas of trial/parallel.ts workers, or
   * concurrent NNI trials (trial --trial-concurrency). With more than one, TensorFlow runs each op
   * in its caller's thread (TF_NUM_INTRAOP_THREADS=1, unless set): its default pool of one thread
   * per core in every replica or process oversubscribes the cores. Measured on 2 cores, images/s
   * of macro training (`node dist/bench/supernet-cnn.js --backend tensorflow --space macro
   * --workers W`): 2 workers 120 → 150 (one process: 109), micro 48 → 75 (57); two such processes
   * at once 177 → 212 together (inference 794 → 894). One alone keeps the pool, which it gains
   * from (macro 98, micro 47 with one thread).
   */
  replicas?: number;
}

/** TensorFlow reads this once, when tfjs-node loads. */
const INTRA_OP_THREADS = 'TF_NUM_INTRAOP_THREADS';

async function tryTensorflow({ replicas = 1 }: BackendOptions): Promise<string> {
  if (replicas > 1) process.env[INTRA_OP_THREADS] ??= '1';
  const threads = process.env[INTRA_OP_THREADS];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      requireCommonJs(pkg);
      if (await tf.setBackend('tensorflow')) return threads ? `${pkg} (${INTRA_OP_THREADS}=${threads})` : pkg;
    } catch {
      // not installed, or its native binary failed to load: try the next one
    }
  }
  throw new Error('neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node loads');
}

async function tryWasm(): Promise<string> {
  const wasm = requireCommonJs('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  registerTrainingKernels('wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const threads = wasm.getThreadsCount();
  return `@tensorflow/tfjs-backend-wasm (${simd ? 'simd' : 'no simd'}, ${threads} thread${threads === 1 ? '' : 's'})`;
}

async function tryCpu(): Promise<string> {
  requireCommonJs('@tensorflow/tfjs-backend-cpu');
  registerTrainingKernels('cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
  return '@tensorflow/tfjs-backend-cpu';
}

const LOADERS: Record<BackendName, (options: BackendOptions) => Promise<string>> = { tensorflow: tryTensorflow, wasm: tryWasm, cpu: tryCpu };

/**
 * Initialises a backend once per process. With `forced`, only that backend is tried and its
 * failure is an error; otherwise the first that loads wins and each fallback is warned about.
 */
export async function setupBackend(
  forced?: BackendName,
  warn: (line: string) => void = (line) => console.warn(line),
  options: BackendOptions = {},
): Promise<BackendInfo> {
  if (active) {
    if (forced && forced !== active.name)
      throw new Error(`backend already initialised as ${active.name}, cannot switch to ${forced}`);
    return active;
  }
  const order = forced ? [forced] : BACKENDS;
  for (const name of order) {
    try {
      const detail = await LOADERS[name](options);
      active = { name, detail };
      return active;
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      if (forced) throw new Error(`backend ${forced} is not available: ${reason}`);
      warn(`warning: backend ${name} unavailable (${reason}); falling back`);
    }
  }
  throw new Error('no TensorFlow.js backend could be initialised');
}
