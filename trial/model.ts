/*
 * The contract between the shared-weight supernets (trial/supernet/*), the fixed retrain-time
 * networks (trial/fixed/*), the weight store (trial/store.ts) and whoever drives training (NNI
 * trials, the embedded runner, benchmarks).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Random } from '../common/random.js';
import type { Genotype } from '../search-spaces/genotype.js';
import type { DeferredVariable } from './nn.js';
import type { HostTensor } from './optim.js';

/** One tensor of a model's state: a backend variable, one not uploaded yet, or an optimizer slot kept on the host. */
export type StateTensor = tf.Variable | DeferredVariable | HostTensor;

/** A minibatch. Images: x [B,H,W,C] float32, y [B] int32. Text: x [B,T] int32 token ids, y [B,T] int32 next tokens. */
export interface Batch {
  x: tf.Tensor;
  y: tf.Tensor;
}

/** What one step or evaluation measured (plain numbers, already read back from the backend). */
export interface StepStats {
  /** Mean cross-entropy per example (images) or per token (text), without regularisers. */
  loss: number;
  /** Top-1 accuracy for images; absent for text. */
  accuracy?: number;
}

/** One scoring: architecture `g` on `batch`. */
export interface Evaluation<G extends Genotype = Genotype> {
  g: G;
  batch: Batch;
}

/**
 * A network whose weights are trained by `trainStep` and read by `evaluate`.
 * Supernets take the architecture per call (a forward pass builds only its subgraph);
 * fixed networks ignore the argument's freedom and always use the genotype they were built for.
 */
export interface TrainableModel<G extends Genotype = Genotype> {
  /**
   * Every tensor that makes up the model's state, each with a unique, stable name: weights,
   * optimiser slots and batch-norm moving statistics. This is exactly what the weight store saves.
   */
  readonly state: ReadonlyMap<string, StateTensor>;
  /**
   * The model's stream of random draws (dropout and drop-path masks), so that a checkpoint can
   * save and restore it and a resumed run draws the same masks as an uninterrupted one.
   */
  readonly random?: Random;
  /** One optimisation step of architecture `g` on `batch` at learning rate `lr`. */
  trainStep(g: G, batch: Batch, lr: number): StepStats;
  /** Scores architecture `g` on `batch` with the current weights; changes nothing. */
  evaluate(g: G, batch: Batch): StepStats;
  /**
   * `evaluate` of every job, in order, each batch disposed once read. Models with replicas
   * (trial/parallel.ts) score several jobs at once; without this method, `evaluateAll` below
   * scores them one after another.
   */
  evaluateAll?(jobs: Iterable<Evaluation<G>>): StepStats[];
  /** Recurrent models: zero the hidden state carried across training batches (ENAS.md §3, PTB). */
  resetState?(): void;
  dispose(): void;
}

/** Frees a batch's tensors. */
export function disposeBatch(batch: Batch): void {
  batch.x.dispose();
  batch.y.dispose();
}

/** `model.evaluateAll(jobs)`, or `evaluate` of one job after another; every batch is disposed once scored. */
export function evaluateAll<G extends Genotype>(model: TrainableModel<G>, jobs: Iterable<Evaluation<G>>): StepStats[] {
  if (model.evaluateAll) return model.evaluateAll(jobs);
  const stats: StepStats[] = [];
  for (const { g, batch } of jobs) {
    try {
      stats.push(model.evaluate(g, batch));
    } finally {
      disposeBatch(batch);
    }
  }
  return stats;
}
