/*
 * The weight store as shared-mode trials use it, without TensorFlow.js: where it lives, its global
 * step, and loading it with its weights checked. A trial loads it before its data is ready
 * (trial/trial.ts), while the read-ahead worker may still be reading, and has that worker check it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkStoreData, hasNonFinite, type DataCheckRequest, type DataCheckResult } from './store-data-check.js';
import { assertChecksum, MANIFEST_FILE, readStoreUnchecked, type StoreSnapshot, type StoreTensors } from './store.js';

/** The store tensor counting training steps taken by all trials. */
export const GLOBAL_STEP = 'trial/global_step';

/** --store, else runs/nni-<experiment id>/store (standalone: runs/standalone/store) under the trial's working directory, NNI's trialCodeDirectory. */
export function defaultStoreDir(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  return resolve(cwd, explicit ?? join('runs', env.NNI_EXP_ID ? `nni-${env.NNI_EXP_ID}` : 'standalone', 'store'));
}

/** The first float32 tensor holding a NaN or ±Infinity, if any. */
export function nonFiniteTensor(tensors: StoreTensors): string | undefined {
  for (const [name, { data }] of tensors) if (data instanceof Float32Array && hasNonFinite(data)) return name;
  return undefined;
}

/** Runs the data checks somewhere else (the read-ahead worker); undefined when it cannot. */
export type DataChecker = (request: DataCheckRequest) => Promise<DataCheckResult> | undefined;

/** A loaded store: its snapshot, and its weights without the global step. */
export interface SharedStore {
  snapshot: StoreSnapshot;
  weights: StoreTensors;
  /**
   * Settles when the data has been checked (its SHA-256 against the manifest's, no non-finite
   * weights); rejects when a check fails. Await it before the weights' values are used.
   */
  checked: Promise<void>;
}

/**
 * Loads the store in `storeDir`; undefined when none has been written yet (the first trial writes
 * it). With `checkElsewhere` the data is read into shared memory and checked there while the
 * caller goes on (`checked`), else here before this returns.
 */
export function loadSharedStore(storeDir: string, checkElsewhere?: DataChecker): SharedStore | undefined {
  if (!existsSync(join(storeDir, MANIFEST_FILE))) return undefined;
  const read = readStoreUnchecked(storeDir, checkElsewhere && ((size) => new Uint8Array(new SharedArrayBuffer(size))));
  const floats = read.manifest.tensors.filter((t) => t.dtype === 'float32');
  const floatRanges = new Float64Array(2 * floats.length);
  floats.forEach((t, k) => floatRanges.set([t.offset, t.length], 2 * k));
  const request: DataCheckRequest = { bytes: read.bytes, floatRanges };
  const verdict = ({ sha256, firstNonFinite }: DataCheckResult): void => {
    assertChecksum(read, sha256);
    // A NaN does not always show in the loss (ReLU maps it to 0 on wasm), so the weights themselves are checked.
    if (firstNonFinite >= 0)
      throw new Error(
        `weight store ${storeDir} holds non-finite values in "${floats[firstNonFinite]!.name}" (training diverged): delete that directory to start over`,
      );
  };
  const elsewhere = checkElsewhere?.(request);
  let checked: Promise<void>;
  if (elsewhere) {
    checked = elsewhere.then(verdict);
    // Handled where it is awaited; a trial that fails before then must not die of an unhandled rejection.
    checked.catch(() => undefined);
  } else {
    verdict(checkStoreData(request));
    checked = Promise.resolve();
  }
  const weights = new Map(read.snapshot.tensors);
  weights.delete(GLOBAL_STEP);
  return { snapshot: read.snapshot, weights, checked };
}
