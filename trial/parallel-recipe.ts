/*
 * A serialisable description of a model (plain JSON: kind, config, genotype), so that a worker
 * thread can build exactly the model the main thread asked for (trial/parallel.ts).
 */
import { readFileSync } from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import { Random } from '../common/random.js';
import type { BackendName } from './backend.js';
import type { Genotype, MacroGenotype, MicroGenotype } from '../search-spaces/genotype.js';
import type { Batch, StepStats, TrainableModel } from './model.js';
import { MacroFixedNet, type MacroFixedConfig } from './fixed/macro.js';
import { MicroFixedNet, type MicroFixedConfig } from './fixed/micro.js';
import { MacroSupernet, type MacroSupernetConfig } from './supernet/macro.js';
import { MicroSupernet, type MicroSupernetConfig } from './supernet/micro.js';
import { RnnSupernet, type RnnSupernetConfig } from './supernet/rnn.js';

export type ModelRecipe =
  | { kind: 'micro-supernet'; config: Partial<MicroSupernetConfig> }
  | { kind: 'macro-supernet'; config: Partial<MacroSupernetConfig> }
  | { kind: 'micro-fixed'; genotype: MicroGenotype; config: Partial<MicroFixedConfig> }
  | { kind: 'macro-fixed'; genotype: MacroGenotype; config: Partial<MacroFixedConfig> }
  | { kind: 'rnn-supernet'; config: Omit<Partial<RnnSupernetConfig>, 'initialState'> };

/**
 * A model a worker can hold: `trainStep` split into the gradients of a shard (host arrays keyed
 * by name) and the update by their average. Moving statistics are variables that are not
 * trainable and that `computeGradients` assigns.
 */
export interface ReplicaModel<G extends Genotype = any> extends TrainableModel<G> {
  readonly random: Random;
  computeGradients(g: G, batch: Batch): { grads: Map<string, Float32Array>; stats: StepStats };
  applyGradients(grads: ReadonlyMap<string, Float32Array>, lr: number, g: G): void;
}

/** Builds the model a recipe describes (same recipe, same seed → identical initial weights). */
export function buildFromRecipe(recipe: ModelRecipe): ReplicaModel {
  switch (recipe.kind) {
    case 'micro-supernet':
      return new MicroSupernet(recipe.config);
    case 'macro-supernet':
      return new MacroSupernet(recipe.config);
    case 'micro-fixed':
      return new MicroFixedNet(recipe.genotype, recipe.config);
    case 'macro-fixed':
      return new MacroFixedNet(recipe.genotype, recipe.config);
    case 'rnn-supernet':
      return new RnnSupernet(recipe.config);
  }
}

/** The recipe of a model built here, from its class and config (stored weights left out: parallelize copies the state); undefined for any other model (the fixed RNN). */
export function recipeOf(model: unknown): ModelRecipe | undefined {
  const plain = <T>(config: T): T => JSON.parse(JSON.stringify(config)) as T;
  if (model instanceof MicroSupernet) return { kind: 'micro-supernet', config: plain(model.config) };
  if (model instanceof MacroSupernet) return { kind: 'macro-supernet', config: plain(model.config) };
  if (model instanceof MicroFixedNet) return { kind: 'micro-fixed', genotype: plain(model.genotype), config: plain(model.config) };
  if (model instanceof MacroFixedNet) return { kind: 'macro-fixed', genotype: plain(model.genotype), config: plain(model.config) };
  if (model instanceof RnnSupernet) {
    const { initialState: _stored, ...config } = model.config;
    return { kind: 'rnn-supernet', config: plain(config) };
  }
  return undefined;
}

/**
 * The dropout / drop-path stream of replica `index`. Replica 0 keeps the model's own stream (so a
 * one-worker DataParallelModel draws exactly what the plain model draws); the others get
 * independent streams derived from the seed, so shards do not share masks.
 */
export function replicaRandomState(seed: number, index: number, own: readonly number[]): number[] {
  if (index === 0) return [...own];
  return new Random((seed ^ Math.imul(index, 0x9e3779b9) ^ 0x5bd1e995) >>> 0).state;
}

/* The messages between the main thread and a replica (trial/parallel-worker.ts). */

/**
 * CPU time of the calling thread in milliseconds (Linux: /proc/thread-self/stat, at clock-tick
 * resolution, 10 ms), NaN elsewhere. On a loaded machine it tells what a step costs, whatever
 * share of the cores the thread got.
 */
export function threadCpuMs(): number {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the command name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** Milliseconds on a clock every thread of the process shares. */
export const sharedClock = (): number => performance.timeOrigin + performance.now();

export interface WorkerInit {
  recipe: ModelRecipe;
  backend: BackendName;
  index: number;
  port: MessagePort;
  signal: SharedArrayBuffer;
  /** The worker module (file URL), imported by the bootstrap script. */
  url: string;
}

/** Host arrays of some named tensors, packed into one buffer. */
export interface Packed {
  names: string[];
  lengths: number[];
  data: Float32Array;
}

/** A shard of a batch: images x [rows,H,W,C] float32 and y [rows], or text x and y [rows,T] int32. */
export interface Shard {
  x: Float32Array | Int32Array;
  shape: number[];
  y: Int32Array;
  yShape: number[];
}

export type Request =
  | ({ op: 'compute'; seq: number; g: unknown; sentAt: number } & Shard)
  | { op: 'apply'; seq: number; g: unknown; lr: number; grads: Packed; moving: Packed }
  | ({ op: 'evaluate'; seq: number; g: unknown } & Shard)
  /** Recurrent models: zero the hidden state the replica carries for its rows. */
  | { op: 'reset'; seq: number }
  | { op: 'read'; seq: number }
  | { op: 'write'; seq: number; state: StateEntry[]; random?: number[] }
  | { op: 'fail'; seq: number; message: string };

export interface StateEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

export type Reply =
  | { seq: number; op: 'ready'; detail: string }
  | { seq: number; op: 'computed'; grads: Packed; moving: Packed; loss: number; accuracy?: number; computeMs: number; applyMs: number; cpuMs: number; startedAt: number }
  | { seq: number; op: 'evaluated'; loss: number; accuracy?: number }
  | { seq: number; op: 'state'; state: StateEntry[]; random: number[] }
  | { seq: number; op: 'written' }
  | { seq: number; op: 'reset' }
  | { seq: number; op: 'error'; message: string };

export function pack(entries: Iterable<readonly [string, ArrayLike<number>]>): Packed {
  const names: string[] = [];
  const lengths: number[] = [];
  const arrays: ArrayLike<number>[] = [];
  let total = 0;
  for (const [name, values] of entries) {
    names.push(name);
    lengths.push(values.length);
    arrays.push(values);
    total += values.length;
  }
  const data = new Float32Array(total);
  let offset = 0;
  for (const values of arrays) {
    data.set(values, offset);
    offset += values.length;
  }
  return { names, lengths, data };
}

export function* unpack(packed: Packed): Generator<[string, Float32Array]> {
  let offset = 0;
  for (let i = 0; i < packed.names.length; i++) {
    const length = packed.lengths[i]!;
    yield [packed.names[i]!, packed.data.subarray(offset, offset + length)];
    offset += length;
  }
}

