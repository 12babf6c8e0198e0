/*
 * Data parallelism over worker threads for the supernets and the fixed CNNs: TensorFlow.js's
 * wasm backend runs one thread in Node, so one training process uses one core; N replicas in N
 * worker threads use N. On tfjs-node each replica runs TensorFlow's ops in its own thread
 * (trial/backend.ts BackendOptions.replicas), which also beats one process on TensorFlow's pool.
 *
 * Each worker builds the same model from the same recipe and seed (identical initial weights)
 * on the same backend. A training step splits the batch's host arrays into N shards; every
 * worker computes the gradients of its shard (`computeGradients`, trial/cnn.ts and
 * trial/rnn-cell.ts; for the RNN supernet, of its rows' block of each weight); the main thread
 * averages them weighted by shard size and sends the mean back; every worker applies it
 * (`applyGradients`), so the replicas stay identical. Evaluation is not sharded: each batch is
 * scored whole by one replica, several batches at once (`evaluateAll`), so a score is exactly
 * the plain model's. What differs in training from one process on the whole batch:
 *   - batch norm normalises with per-shard statistics ("ghost batch norm", as PyTorch DDP without
 *     SyncBatchNorm); the RNN supernet's norms, at every time step, likewise;
 *   - moving statistics (macro models, fixed networks, the RNN supernet) are updated per shard,
 *     then replaced by their shard-weighted average after every step, so they stay identical
 *     across replicas;
 *   - an RNN's hidden state carried between windows lives in the replicas, each for its rows
 *     (shard k is always the same rows); `resetState` zeroes all of them;
 *   - dropout and drop-path draw from one stream per replica (replica 0 keeps the model's own
 *     stream, so a one-worker model draws exactly what the plain model draws).
 *
 * The calls are synchronous, as TrainableModel wants: the main thread blocks in Atomics.wait
 * until each worker has posted its answer, and reads it with receiveMessageOnPort. So does the
 * constructor, until every worker has set up its backend and built its replica (seconds). An
 * error in a worker is thrown by the call that was waiting for it, as "worker <k>: <message>";
 * the replicas may then differ, so every later call throws too. `dispose` terminates the workers
 * (`close` also waits for them to exit); the workers are unref'd, so a forgotten dispose does not
 * keep the process alive.
 *
 * `random` is absent: the replicas' streams live in the workers and are not checkpointed, so a
 * resumed run draws other dropout masks than an uninterrupted one would (weights, slots and
 * moving statistics are in `state` and resume exactly).
 *
 * `state` is a main-thread copy of the weights: reading it fetches the replicas' current values
 * from worker 0 if a step has run since; any of those variables assigned by the caller (e.g.
 * trial/store-tf.ts `assignModelState`, checkpoint restore) is noticed before the next call and
 * the whole state is broadcast to every worker. `syncState()` / `pushState()` do the same
 * explicitly.
 */
import tf = require('@tensorflow/tfjs-core');
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { compiledModuleUrl } from '../common/compiled-module.js';
import type { Genotype } from '../search-spaces/genotype.js';
import { BACKENDS, type BackendName } from './backend.js';
import { assignState } from './store-tf.js';
import { disposeBatch, type Batch, type Evaluation, type StepStats, type TrainableModel } from './model.js';
import {
  recipeOf,
  sharedClock,
  unpack,
  type ModelRecipe,
  type Packed,
  type Reply,
  type Request,
  type Shard,
  type StateEntry,
  type WorkerInit,
} from './parallel-recipe.js';

export type { ModelRecipe } from './parallel-recipe.js';

/**
 * `model` trained data-parallel over `workers` threads (default min(2, cores)) if a recipe can
 * rebuild it (trial/parallel-recipe.ts: not the fixed RNN) and more than one worker is asked for;
 * otherwise `model` itself. The replicas start
 * from `model`'s current state (and random stream, in replica 0); `model` is disposed. The
 * one-line way to wire it in: `createSupernet: () => parallelize(new MicroSupernet(…), workers)`.
 */
export function parallelize<G extends Genotype>(model: TrainableModel<G>, workers?: number, options: Omit<DataParallelOptions, 'workers'> = {}): TrainableModel<G> {
  const count = workers ?? Math.min(2, availableParallelism());
  const recipe = count > 1 ? recipeOf(model) : undefined;
  if (!recipe) return model;
  const parallel = new DataParallelModel<G>(recipe, { ...options, workers: count });
  try {
    for (const [name, variable] of parallel.state) {
      const source = model.state.get(name);
      if (!source) throw new Error(`internal: the replicas have state ${name}, the model not`);
      assignState(variable, source.dataSync() as Float32Array | Int32Array);
    }
    if (model.random) parallel.setReplicaRandom(0, model.random.state);
    parallel.pushState();
  } catch (error) {
    parallel.dispose();
    throw error;
  }
  model.dispose();
  return parallel;
}

export interface DataParallelOptions {
  /** Worker threads; default min(2, os.availableParallelism()). */
  workers?: number;
  /** Backend of the workers; default the main thread's current backend (wasm if it is none of ours). */
  backend?: BackendName;
  /** How long a call waits for a worker's answer before giving up with an error; default 10 minutes. */
  replyTimeoutMs?: number;
  /** The worker module's URL; default the compiled trial/parallel-worker.js (tests point it elsewhere). */
  workerModule?: URL;
}

/** Where the time of the training steps went, in milliseconds summed over `steps`. */
export interface DataParallelTimings {
  steps: number;
  /** Reading the batch to the host and cutting the shards. */
  splitMs: number;
  /** From posting the shards to having every worker's gradients (compute + messages + waiting for the slower). */
  roundTripMs: number;
  /** The slowest worker's computeGradients (forward + backward + packing), per step. */
  computeMs: number;
  /** Applying the previous step's update in the slowest worker (overlaps the main thread's next batch). */
  applyMs: number;
  /** Averaging gradients and moving statistics on the main thread, and posting the result. */
  averageMs: number;
  /**
   * From posting the shards to the slowest worker starting on them: message latency plus, if the
   * worker was still applying the previous update, the rest of that update.
   */
  toWorkerMs: number;
  /** CPU time of the workers' threads (update + gradients), summed over workers (Linux, 10 ms ticks). */
  workerCpuMs: number;
}

interface Replica {
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
  exited: Promise<number>;
}

const dataIdOf = (v: tf.Variable): object => (v as unknown as { dataId: object }).dataId;

/**
 * The worker's entry: an in-memory script that cannot fail to load. It marks the thread's exit in
 * the signal's word 1, so that a main thread blocked in Atomics.wait notices a worker whose module
 * failed to load or that died (it cannot see the Worker's 'error'/'exit' events while blocked),
 * then imports the real worker (trial/parallel-worker.ts).
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const signal = new Int32Array(workerData.signal);
const report = (message) => {
  try { workerData.port.postMessage({ seq: -1, op: 'error', message: 'worker ' + workerData.index + ': ' + message }); } catch {}
  Atomics.store(signal, 1, 1);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
};
process.on('exit', (code) => report('its thread exited with code ' + code));
import(workerData.url).catch((error) => {
  report('cannot load ' + workerData.url + ': ' + (error && error.message));
  process.exit(1);
});
`;

/** Sizes of `parts` contiguous shards of `n` rows, the first ones one larger; empty shards dropped. */
export function shardSizes(n: number, parts: number): number[] {
  const sizes: number[] = [];
  for (let k = 0; k < parts; k++) {
    const size = Math.floor(n / parts) + (k < n % parts ? 1 : 0);
    if (size > 0) sizes.push(size);
  }
  return sizes;
}

/**
 * Σ_k weights[k]·packed[k] by name (a name a shard lacks counts as a zero gradient there);
 * accumulated in float64, stored as float32.
 */
export function weightedAverage(parts: readonly Packed[], weights: readonly number[]): Packed {
  const first = parts[0];
  if (first && parts.every((p) => p.names.length === first.names.length && p.names.every((n, i) => n === first.names[i] && p.lengths[i] === first.lengths[i]))) {
    // Every shard has the same names in the same order (the usual case): one pass over the packed data.
    const data = new Float32Array(first.data.length);
    if (parts.length === 2) {
      // Two workers, the default: the same sums as the loop below, in a third of its time (3M
      // RNN gradients: 8 ms against 23, on the main thread while both workers wait).
      const [a, b] = [parts[0]!.data, parts[1]!.data];
      const [wa, wb] = [weights[0]!, weights[1]!];
      for (let i = 0; i < data.length; i++) data[i] = wa * a[i]! + wb * b[i]!;
    } else
      for (let i = 0; i < data.length; i++) {
        let sum = 0;
        for (let k = 0; k < parts.length; k++) sum += weights[k]! * parts[k]!.data[i]!;
        data[i] = sum;
      }
    return { names: first.names, lengths: first.lengths, data };
  }
  const order: string[] = [];
  const sums = new Map<string, Float64Array>();
  parts.forEach((part, k) => {
    const w = weights[k]!;
    for (const [name, values] of unpack(part)) {
      let sum = sums.get(name);
      if (!sum) {
        sum = new Float64Array(values.length);
        sums.set(name, sum);
        order.push(name);
      } else if (sum.length !== values.length) throw new Error(`shards disagree on the size of ${name}`);
      for (let i = 0; i < values.length; i++) sum[i]! += w * values[i]!;
    }
  });
  const lengths = order.map((name) => sums.get(name)!.length);
  const data = new Float32Array(lengths.reduce((a, b) => a + b, 0));
  let offset = 0;
  for (const name of order) {
    const sum = sums.get(name)!;
    data.set(sum, offset);
    offset += sum.length;
  }
  return { names: order, lengths, data };
}

export class DataParallelModel<G extends Genotype = Genotype> implements TrainableModel<G> {
  readonly workers: number;
  /** The workers' backend description, e.g. "@tensorflow/tfjs-backend-wasm (simd, 1 thread)". */
  readonly backendDetail: string;
  readonly timings: DataParallelTimings = { steps: 0, splitMs: 0, roundTripMs: 0, computeMs: 0, applyMs: 0, averageMs: 0, toWorkerMs: 0, workerCpuMs: 0 };
  private readonly replicas: Replica[] = [];
  private readonly mainState = new Map<string, tf.Variable>();
  /** dataId of every main-thread variable when it last matched the replicas. */
  private readonly syncedIds = new Map<string, object>();
  /** The replicas have stepped since the main-thread copy was refreshed. */
  private replicasAhead = false;
  private seq = 1;
  private readonly replyTimeoutMs: number;
  private broken?: string;
  private disposed = false;

  /** Starts the workers and waits (blocking) until each has built its replica. */
  constructor(
    readonly recipe: ModelRecipe,
    options: DataParallelOptions = {},
  ) {
    this.replyTimeoutMs = options.replyTimeoutMs ?? 600_000;
    this.workers = Math.max(1, Math.floor(options.workers ?? Math.min(2, availableParallelism())));
    const current = tf.getBackend() as BackendName | undefined;
    const backend = options.backend ?? (current && (BACKENDS as readonly string[]).includes(current) ? current : 'wasm');
    const url = options.workerModule ?? compiledModuleUrl('./parallel-worker.js', import.meta.url);
    for (let index = 0; index < this.workers; index++) {
      const { port1, port2 } = new MessageChannel();
      // Word 0: bumped after every answer; word 1: set when the worker thread exits.
      const signal = new SharedArrayBuffer(8);
      const init: WorkerInit = { recipe, backend, index, port: port2, signal, url: url.href };
      const worker = new Worker(BOOTSTRAP, { eval: true, workerData: init, transferList: [port2] });
      // A forgotten dispose must not keep the process alive.
      worker.unref();
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      worker.on('error', () => {}); // reported through the port; keep 'error' from being unhandled
      this.replicas.push({ worker, port: port1, signal: new Int32Array(signal), exited });
    }
    try {
      const ready = this.replicas.map((r) => this.receive(r, 0, 'ready'));
      this.backendDetail = (ready[0] as Extract<Reply, { op: 'ready' }>).detail;
      const state = this.request(0, { op: 'read', seq: 0 }, 'state') as Extract<Reply, { op: 'state' }>;
      for (const entry of state.state) this.mainState.set(entry.name, tf.variable(tf.tensor(entry.data, entry.shape, entry.dtype), false));
      this.recordSynced();
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  /** The weights, optimizer slots and moving statistics (a main-thread copy; see the file comment). */
  get state(): ReadonlyMap<string, tf.Variable> {
    if (!this.disposed && this.replicasAhead) this.syncState();
    return this.mainState;
  }

  /** Copies the replicas' current state (worker 0's) into `state`. */
  syncState(): void {
    this.usable();
    this.pushIfAssigned();
    const reply = this.request(0, { op: 'read', seq: 0 }, 'state') as Extract<Reply, { op: 'state' }>;
    for (const entry of reply.state) {
      const variable = this.mainState.get(entry.name)!;
      const value = tf.tensor(entry.data, entry.shape, entry.dtype);
      variable.assign(value);
      value.dispose();
    }
    this.replicasAhead = false;
    this.recordSynced();
  }

  /** Broadcasts `state` (the main-thread copy) to every replica. */
  pushState(): void {
    this.usable();
    const entries: StateEntry[] = [...this.mainState].map(([name, v]) => ({
      name,
      shape: v.shape,
      dtype: v.dtype as 'float32' | 'int32',
      data: v.dataSync<'float32' | 'int32'>().slice(),
    }));
    this.all(() => ({ op: 'write', seq: 0, state: entries }), 'written');
    this.replicasAhead = false;
    this.recordSynced();
  }

  /** Continues replica `index`'s dropout / drop-path stream from `state` (Random.state). */
  setReplicaRandom(index: number, state: readonly number[]): void {
    this.usable();
    this.request(index, { op: 'write', seq: 0, state: [], random: [...state] }, 'written');
  }

  /** Every replica's full state (tests: the replicas must stay identical). */
  replicaStates(): Map<string, Float32Array | Int32Array>[] {
    this.usable();
    this.pushIfAssigned();
    return this.all(() => ({ op: 'read', seq: 0 }), 'state').map(
      (reply) => new Map((reply as Extract<Reply, { op: 'state' }>).state.map((e) => [e.name, e.data])),
    );
  }

  trainStep(g: G, batch: Batch, lr: number): StepStats {
    this.usable();
    this.pushIfAssigned();
    const t0 = performance.now();
    const shards = this.shards(batch);
    const t1 = performance.now();
    const sentAt = sharedClock();
    const replies = this.scatter(shards, (s) => ({ op: 'compute', seq: 0, g, ...s, sentAt }), 'computed') as Extract<Reply, { op: 'computed' }>[];
    const t2 = performance.now();
    const total = shards.reduce((n, s) => n + s.rows, 0);
    const weights = shards.map((s) => s.rows / total);
    const grads = weightedAverage(
      replies.map((r) => r.grads),
      weights,
    );
    const moving = weightedAverage(
      replies.map((r) => r.moving),
      weights,
    );
    this.replicasAhead = true;
    // No answer: the next request queues behind the update, and a failure is reported by the next call.
    this.replicas.forEach((replica, k) => {
      // Every worker gets its own copy, transferred (the last one the original), so nothing is copied twice.
      const last = k === this.replicas.length - 1;
      const own = (packed: Packed): Packed => (last ? packed : { ...packed, data: packed.data.slice() });
      const message = { op: 'apply', seq: this.seq++, g, lr, grads: own(grads), moving: own(moving) } satisfies Request;
      replica.port.postMessage(message, [message.grads.data.buffer as ArrayBuffer, message.moving.data.buffer as ArrayBuffer]);
    });
    const t3 = performance.now();
    const tm = this.timings;
    tm.steps++;
    tm.splitMs += t1 - t0;
    tm.roundTripMs += t2 - t1;
    tm.averageMs += t3 - t2;
    tm.computeMs += Math.max(...replies.map((r) => r.computeMs));
    tm.applyMs += Math.max(...replies.map((r) => r.applyMs));
    tm.toWorkerMs += Math.max(...replies.map((r) => r.startedAt - sentAt));
    tm.workerCpuMs += replies.reduce((sum, r) => sum + r.cpuMs, 0);
    return combine(replies, weights);
  }

  /** `evaluate` of one batch, scored whole by worker 0 (see evaluateAll). */
  evaluate(g: G, batch: Batch): StepStats {
    return this.scoreWhole([{ g, shard: this.shards(batch, 1)[0]! }])[0]!;
  }

  /**
   * Scores every job whole on one replica, each on the first worker that is free. Not sharded: a
   * score is then the plain model's, whatever the worker count and grouping (ghost batch norm
   * would make the micro supernet's depend on them), and the workers' calls are as large as one
   * process's, where a shard's would cost as many kernel calls for half the rows (tfjs-node's RNN
   * scoring: 2 workers on different windows 11,800 tokens/s, on halves of each window 7,800).
   */
  evaluateAll(jobs: Iterable<Evaluation<G>>): StepStats[] {
    return this.scoreWhole(onHost(jobs, (batch) => this.shards(batch, 1)[0]!));
  }

  /** Zeroes the hidden state every replica carries (recurrent models; TrainableModel.resetState). */
  resetState(): void {
    this.usable();
    this.all(() => ({ op: 'reset', seq: 0 }), 'reset');
  }

  /** Makes worker `index` throw `message` on its next request (tests of error reporting). */
  injectFailure(index: number, message: string): void {
    this.usable();
    this.replicas[index]!.port.postMessage({ op: 'fail', seq: this.seq++, message } satisfies Request);
  }

  resetTimings(): void {
    Object.assign(this.timings, { steps: 0, splitMs: 0, roundTripMs: 0, computeMs: 0, applyMs: 0, averageMs: 0, toWorkerMs: 0, workerCpuMs: 0 });
  }

  /** Terminates the workers (without waiting; `close` waits) and frees the main-thread copy. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const replica of this.replicas) {
      void replica.worker.terminate();
      replica.port.close();
    }
    for (const variable of this.mainState.values()) variable.dispose();
    this.mainState.clear();
  }

  /** `dispose`, resolving once every worker thread has exited. */
  async close(): Promise<void> {
    this.dispose();
    await Promise.all(this.replicas.map((r) => r.exited));
  }

  private usable(): void {
    if (this.disposed) throw new Error('the data-parallel model is disposed');
    if (this.broken) throw new Error(`the data-parallel model failed earlier: ${this.broken}`);
  }

  private recordSynced(): void {
    this.syncedIds.clear();
    for (const [name, variable] of this.mainState) this.syncedIds.set(name, dataIdOf(variable));
  }

  /** Broadcasts the main-thread state if the caller assigned any of it since the last sync. */
  private pushIfAssigned(): void {
    for (const [name, variable] of this.mainState) {
      if (this.syncedIds.get(name) !== dataIdOf(variable)) {
        this.pushState();
        return;
      }
    }
  }

  /** Each job to whichever worker is free, one at a time per worker, so architectures of unequal cost keep both busy. */
  private scoreWhole(jobs: Iterable<{ g: G; shard: Shard }>): StepStats[] {
    this.usable();
    this.pushIfAssigned();
    const results: StepStats[] = [];
    const busy: { replica: Replica; seq: number; job: number }[] = [];
    const finishOne = (): void => {
      const { index, reply } = this.receiveFirst(busy, 'evaluated');
      const [{ job }] = busy.splice(index, 1) as [(typeof busy)[number]];
      const { loss, accuracy } = reply as Extract<Reply, { op: 'evaluated' }>;
      results[job] = accuracy === undefined ? { loss } : { loss, accuracy };
    };
    let job = 0;
    for (const { g, shard } of jobs) {
      if (busy.length === this.replicas.length) finishOne();
      const replica = this.replicas.find((r) => !busy.some((b) => b.replica === r))!;
      const seq = this.seq++;
      replica.port.postMessage({ op: 'evaluate', seq, g, ...shard } satisfies Request, [shard.x.buffer as ArrayBuffer, shard.y.buffer as ArrayBuffer]);
      busy.push({ replica, seq, job: job++ });
    }
    while (busy.length > 0) finishOne();
    return results;
  }

  /** Contiguous row blocks of the batch, shard k for worker k (a recurrent replica carries its rows' hidden state from step to step). */
  private shards(batch: Batch, parts = this.replicas.length): (Shard & { rows: number })[] {
    const rows = batch.x.shape[0]!;
    const x = batch.x.dataSync() as Float32Array | Int32Array;
    const yRaw = batch.y.dataSync();
    const y = yRaw instanceof Int32Array ? yRaw : Int32Array.from(yRaw as ArrayLike<number>);
    const xPerRow = x.length / rows;
    const yPerRow = y.length / rows;
    const out = [];
    let start = 0;
    for (const size of shardSizes(rows, parts)) {
      out.push({
        x: x.slice(start * xPerRow, (start + size) * xPerRow),
        shape: [size, ...batch.x.shape.slice(1)],
        y: y.slice(start * yPerRow, (start + size) * yPerRow),
        yShape: [size, ...batch.y.shape.slice(1)],
        rows: size,
      });
      start += size;
    }
    return out;
  }

  /** Posts one request per shard (shard k to worker k), then waits for all the answers. */
  private scatter<S extends Shard>(shards: S[], make: (shard: S) => Request, expect: Reply['op']): Reply[] {
    const seqs = shards.map((shard, k) => {
      const message = { ...make(shard), seq: this.seq++ } as Request;
      this.replicas[k]!.port.postMessage(message, [shard.x.buffer as ArrayBuffer, shard.y.buffer as ArrayBuffer]);
      return message.seq;
    });
    return this.collect(seqs, expect);
  }

  /** Sends the same request to every worker; waits for all the answers. */
  private all(make: () => Request, expect: Reply['op']): Reply[] {
    const seqs = this.replicas.map((replica) => {
      const message = { ...make(), seq: this.seq++ } as Request;
      replica.port.postMessage(message);
      return message.seq;
    });
    return this.collect(seqs, expect);
  }

  private request(index: number, message: Request, expect: Reply['op']): Reply {
    const seq = this.seq++;
    this.replicas[index]!.port.postMessage({ ...message, seq });
    return this.receive(this.replicas[index]!, seq, expect);
  }

  /** Waits for the answers of workers 0…seqs.length−1; the first error is thrown after all have answered or failed. */
  private collect(seqs: number[], expect: Reply['op']): Reply[] {
    const replies: Reply[] = [];
    let failure: unknown;
    seqs.forEach((seq, k) => {
      try {
        replies.push(this.receive(this.replicas[k]!, seq, expect));
      } catch (error) {
        failure ??= error;
      }
    });
    if (failure) throw failure;
    return replies;
  }

  /** Blocks until `replica` answers request `seq`. An error answer breaks the model for good. */
  private receive(replica: Replica, seq: number, expect: Reply['op']): Reply {
    return this.receiveFirst([{ replica, seq }], expect).reply;
  }

  /** Blocks until one of the workers in `waits` answers the request it owes; returns which (its index in `waits`) and the answer. */
  private receiveFirst(waits: readonly { replica: Replica; seq: number }[], expect: Reply['op']): { index: number; reply: Reply } {
    const deadline = performance.now() + this.replyTimeoutMs;
    const first = waits[0]!.replica.signal;
    for (;;) {
      const seen = Atomics.load(first, 0);
      for (const [index, { replica, seq }] of waits.entries()) {
        const message = receiveMessageOnPort(replica.port);
        if (message) return { index, reply: this.checked(message.message as Reply, seq, expect) };
        if (Atomics.load(replica.signal, 1) === 1) this.fail(`worker ${this.replicas.indexOf(replica)}: its thread exited (waiting for ${expect} #${seq})`);
      }
      if (performance.now() > deadline) this.fail(`worker ${this.replicas.indexOf(waits[0]!.replica)}: no answer within ${this.replyTimeoutMs} ms (waiting for ${expect} #${waits[0]!.seq})`);
      // Only the first worker's answers wake this wait; with more, the others are polled every millisecond.
      Atomics.wait(first, 0, seen, waits.length === 1 ? 250 : 1);
    }
  }

  /** `reply` if it answers request `seq` as expected; an error answer or a mismatch breaks the model for good. */
  private checked(reply: Reply, seq: number, expect: Reply['op']): Reply {
    if (reply.op === 'error') this.fail(reply.message);
    if (reply.seq !== seq || reply.op !== expect) this.fail(`expected ${expect} #${seq} from a worker, got ${reply.op} #${reply.seq}`, 'internal: ');
    return reply;
  }

  /** Breaks the model for good with `what`, and throws it. */
  private fail(what: string, prefix = ''): never {
    this.broken ??= what;
    throw new Error(prefix + what);
  }
}

/** The jobs with each batch read to the host as one shard, then disposed. */
function* onHost<G extends Genotype>(jobs: Iterable<Evaluation<G>>, read: (batch: Batch) => Shard): Generator<{ g: G; shard: Shard }> {
  for (const { g, batch } of jobs) {
    try {
      yield { g, shard: read(batch) };
    } finally {
      disposeBatch(batch);
    }
  }
}

/** The shard-weighted mean of the replicas' statistics (accuracy only where the model reports one). */
function combine(replies: readonly StepStats[], weights: readonly number[]): StepStats {
  const mean = (value: (stats: StepStats) => number) => replies.reduce((sum, r, k) => sum + weights[k]! * value(r), 0);
  const loss = mean((r) => r.loss);
  return replies[0]?.accuracy === undefined ? { loss } : { loss, accuracy: mean((r) => r.accuracy!) };
}
