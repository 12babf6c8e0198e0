/*
 * Checkpoints of a training run (search or retraining) in the weight store's format
 * (trial/store.ts): the model's whole state (weights, optimizer slots, BN statistics) as tensors,
 * and everything else (controller state, RNG states, data positions, counters, history
 * bookkeeping) as the manifest's meta. The store replaces its manifest atomically and only after
 * the data file it names is complete and fsynced, so a checkpoint is the old one or the new one,
 * never a mix of the two.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainableModel } from '../trial/model.js';
import { initStore, loadStore, MANIFEST_FILE, type StoreTensor } from '../trial/store.js';
import { assignModelState, readModelState } from '../trial/store-tf.js';

export const CHECKPOINT_DIR = 'checkpoint';
const CHECKPOINT_FORMAT = 'nni-enas-checkpoint/1';

/** What a run keeps beside the model's tensors. */
export interface CheckpointMeta<S> {
  format: typeof CHECKPOINT_FORMAT;
  kind: 'search' | 'retrain';
  /** Model and data description; a checkpoint of anything else is refused on load. */
  description: unknown;
  /** The model's random stream (dropout and drop-path masks), or null if it has none. */
  modelRandom: number[] | null;
  savedAt: string;
  state: S;
}

export interface Checkpoint<S> {
  meta: CheckpointMeta<S>;
  tensors: Map<string, StoreTensor>;
}

/** Writes a new checkpoint version into `dir`, replacing the previous one. */
export async function saveCheckpoint<S>(dir: string, kind: CheckpointMeta<S>['kind'], description: unknown, model: TrainableModel, state: S): Promise<void> {
  const meta: CheckpointMeta<S> = {
    format: CHECKPOINT_FORMAT,
    kind,
    description,
    modelRandom: model.random?.state ?? null,
    savedAt: new Date().toISOString(),
    state,
  };
  await initStore(dir, readModelState(model.state), meta as unknown as Record<string, unknown>, { overwrite: true, log: () => {} });
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, MANIFEST_FILE));
}

/**
 * Reads the checkpoint in `dir`, refusing one of another kind or of another model (`description`
 * differs). The state comes back unchecked; the caller validates it.
 */
export function readCheckpoint<S>(dir: string, kind: CheckpointMeta<S>['kind'], description: unknown): Checkpoint<S> {
  const snapshot = loadStore(dir);
  const meta = snapshot.meta as Partial<CheckpointMeta<S>>;
  if (meta.format !== CHECKPOINT_FORMAT || meta.kind !== kind)
    throw new Error(`${dir}: not a ${kind} checkpoint (format ${JSON.stringify(meta.format)}, kind ${JSON.stringify(meta.kind)})`);
  if (JSON.stringify(meta.description) !== JSON.stringify(description))
    throw new Error(`${dir}: the checkpoint is of ${JSON.stringify(meta.description)}, this run builds ${JSON.stringify(description)}`);
  return { meta: meta as CheckpointMeta<S>, tensors: snapshot.tensors };
}

/** Puts a checkpoint's tensors and random stream back into a freshly built model. */
export function restoreModel(model: TrainableModel, checkpoint: Checkpoint<unknown>): void {
  assignModelState(model.state, checkpoint.tensors);
  const saved = checkpoint.meta.modelRandom;
  if (model.random && saved) model.random.restore(saved);
}
