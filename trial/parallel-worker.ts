/*
 * One replica of a DataParallelModel (trial/parallel.ts), run in a worker thread: builds the
 * model from the recipe, sets up the same backend, and answers the main thread's requests.
 * Every answer is posted on the channel's port, then the shared signal word is bumped and
 * notified, so that the main thread can wait for it synchronously (Atomics.wait +
 * receiveMessageOnPort). The 'apply' request has no answer unless it fails.
 */
import tf = require('@tensorflow/tfjs-core');
import { workerData } from 'node:worker_threads';
import { setupBackend } from './backend.js';
import { assignState } from './store-tf.js';
import {
  buildFromRecipe,
  pack,
  replicaRandomState,
  sharedClock,
  threadCpuMs,
  unpack,
  type ReplicaModel,
  type Reply,
  type Request,
  type Shard,
  type StateEntry,
  type WorkerInit,
} from './parallel-recipe.js';

const dataIdOf = (v: tf.Variable): object => (v as unknown as { dataId: object }).dataId;

async function main(init: WorkerInit): Promise<void> {
  const { port } = init;
  const signal = new Int32Array(init.signal);
  const post = (reply: Reply, transfer: ArrayBuffer[] = []) => {
    port.postMessage(reply, transfer);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };
  const fail = (seq: number, error: unknown) =>
    post({ seq, op: 'error', message: `worker ${init.index}: ${error instanceof Error ? error.message : String(error)}` });
  process.on('uncaughtException', (error) => fail(-1, error));
  // The bootstrap script (trial/parallel.ts) reports the thread's exit.

  let model: ReplicaModel;
  try {
    const info = await setupBackend(init.backend);
    model = buildFromRecipe(init.recipe);
    model.random.restore(replicaRandomState(init.recipe.config.seed ?? 0, init.index, model.random.state));
    post({ seq: 0, op: 'ready', detail: info.detail });
  } catch (error) {
    fail(0, error);
    return;
  }
  // Variables whose value the forward pass assigns (BN moving statistics, the step counter).
  const assignedInForward = [...model.state].filter((entry): entry is [string, tf.Variable] => entry[1] instanceof tf.Variable && !entry[1].trainable);
  let applyMs = 0;
  let applyCpuMs = 0;

  const toBatch = (shard: Shard) => ({ x: tf.tensor(shard.x, shard.shape), y: tf.tensor(shard.y, shard.yShape, 'int32') });

  port.on('message', (request: Request) => {
    try {
      switch (request.op) {
        case 'compute': {
          const startedAt = sharedClock();
          const start = performance.now();
          const cpuStart = threadCpuMs();
          const before = assignedInForward.map(([, v]) => dataIdOf(v));
          const batch = toBatch(request);
          let result;
          try {
            result = model.computeGradients(request.g, batch);
          } finally {
            tf.dispose([batch.x, batch.y]);
          }
          const moving = pack(
            assignedInForward.filter(([, v], i) => dataIdOf(v) !== before[i]).map(([name, v]) => [name, v.dataSync()] as const),
          );
          const grads = pack(result.grads);
          const computeMs = performance.now() - start;
          const cpuMs = threadCpuMs() - cpuStart + applyCpuMs;
          post(
            { seq: request.seq, op: 'computed', grads, moving, ...result.stats, computeMs, applyMs, cpuMs, startedAt },
            [grads.data.buffer as ArrayBuffer, moving.data.buffer as ArrayBuffer],
          );
          break;
        }
        case 'apply': {
          const start = performance.now();
          const cpuStart = threadCpuMs();
          model.applyGradients(new Map(unpack(request.grads)), request.lr, request.g);
          for (const [name, values] of unpack(request.moving)) assignState(model.state.get(name)!, values);
          applyMs = performance.now() - start;
          applyCpuMs = threadCpuMs() - cpuStart;
          break;
        }
        case 'evaluate': {
          const batch = toBatch(request);
          try {
            const stats = model.evaluate(request.g, batch);
            post({ seq: request.seq, op: 'evaluated', ...stats });
          } finally {
            tf.dispose([batch.x, batch.y]);
          }
          break;
        }
        case 'read': {
          const state: StateEntry[] = [...model.state].map(([name, v]) => ({
            name,
            shape: [...v.shape],
            dtype: v.dtype as 'float32' | 'int32',
            data: (v.dataSync() as Float32Array | Int32Array).slice(),
          }));
          post({ seq: request.seq, op: 'state', state, random: model.random.state }, state.map((e) => e.data.buffer as ArrayBuffer));
          break;
        }
        case 'write': {
          for (const entry of request.state) {
            const variable = model.state.get(entry.name);
            if (!variable) throw new Error(`no state variable ${entry.name}`);
            assignState(variable, entry.data);
          }
          if (request.random) model.random.restore(request.random);
          post({ seq: request.seq, op: 'written' });
          break;
        }
        case 'reset':
          model.resetState?.();
          post({ seq: request.seq, op: 'reset' });
          break;
        case 'fail':
          throw new Error(request.message);
      }
    } catch (error) {
      fail(request.seq, error);
    }
  });
}

void main(workerData as WorkerInit);
