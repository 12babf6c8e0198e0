/*
 * One supernet kept warm in its own process on one TensorFlow.js backend, for the interleaved
 * rounds of `nni-enas bench supernet` (bench/supernet.ts), which sends every implementation the
 * same architectures. torch_supernet.py --serve is its PyTorch counterpart.
 *
 *   node dist/bench/supernet-serve.js --space micro|macro|rnn --backend wasm [--workers N] [sizes]
 *
 * Prints {"ready": true, "backend": …} once the model is built, then answers each stdin line
 *   {"run": "train" | "infer", "genotypes": [...]}  → {"seconds": wall, "cpuSeconds": process CPU}
 * (train: one step per architecture; infer: all of them scored through evaluateAll, as the search scores)
 *   {"run": "kernels", "genotypes": [g]}             → {"kernelCalls": n} (one profiled training step)
 * with one stdout line; ends at the end of stdin. Inputs are random (the data does not change the
 * cost): images [batch, 28, 28, 1] by default, token windows [batch, bptt] over --vocab ids.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../common/random.js';
import type { Genotype } from '../search-spaces/genotype.js';
import { BACKENDS, setupBackend, type BackendName } from '../trial/backend.js';
import { evaluateAll, type Batch, type TrainableModel } from '../trial/model.js';
import { parallelize } from '../trial/parallel.js';
import { MACRO_SEARCH_DEFAULTS, MacroSupernet } from '../trial/supernet/macro.js';
import { MICRO_SEARCH_DEFAULTS, MicroSupernet } from '../trial/supernet/micro.js';
import { RNN_SEARCH_TRAINING, RnnSupernet } from '../trial/supernet/rnn.js';

const { values } = parseArgs({
  options: {
    space: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    workers: { type: 'string', default: '1' },
    batch: { type: 'string' },
    height: { type: 'string', default: '28' },
    width: { type: 'string', default: '28' },
    'in-channels': { type: 'string', default: '1' },
    channels: { type: 'string' },
    layers: { type: 'string' },
    nodes: { type: 'string' },
    hidden: { type: 'string', default: '200' },
    bptt: { type: 'string', default: String(RNN_SEARCH_TRAINING.bpttSteps) },
    vocab: { type: 'string', default: '10000' },
  },
});
const space = values.space;
if (space !== 'micro' && space !== 'macro' && space !== 'rnn') throw new Error('--space must be micro, macro or rnn');
const backendName = values.backend as BackendName;
if (!BACKENDS.includes(backendName)) throw new Error(`--backend must be one of ${BACKENDS.join(', ')}`);
const workers = Number(values.workers);
if (!(Number.isInteger(workers) && workers >= 1)) throw new Error('--workers must be a positive integer');
const number = (value: string | undefined, fallback: number): number => (value === undefined ? fallback : Number(value));

const backend = await setupBackend(backendName, undefined, { replicas: workers });
const random = new Random(1);
const CNN_LR = 0.05;

let model: TrainableModel<Genotype>;
let batch: Batch;
let lr: number;
if (space === 'rnn') {
  const [vocabSize, batchSize, bptt] = [Number(values.vocab), number(values.batch, RNN_SEARCH_TRAINING.batchSize), Number(values.bptt)];
  const plain = new RnnSupernet({ vocabSize, hiddenSize: Number(values.hidden), nodes: number(values.nodes, 12) });
  model = parallelize(plain as TrainableModel<Genotype>, workers);
  const tokens = Int32Array.from({ length: batchSize * (bptt + 1) }, () => random.int(vocabSize));
  const window = tf.tensor2d(tokens, [batchSize, bptt + 1], 'int32');
  batch = { x: tf.slice(window, [0, 0], [-1, bptt]), y: tf.slice(window, [0, 1], [-1, bptt]) };
  window.dispose();
  lr = RNN_SEARCH_TRAINING.learningRate;
} else {
  const inputShape: [number, number, number] = [Number(values.height), Number(values.width), Number(values['in-channels'])];
  const defaults = space === 'micro' ? MICRO_SEARCH_DEFAULTS : MACRO_SEARCH_DEFAULTS;
  const sizes = { inputShape, channels: number(values.channels, defaults.channels), layers: number(values.layers, defaults.layers) };
  const plain = space === 'micro' ? new MicroSupernet({ ...sizes, nodes: number(values.nodes, MICRO_SEARCH_DEFAULTS.nodes) }) : new MacroSupernet(sizes);
  model = parallelize(plain as TrainableModel<Genotype>, workers);
  const batchSize = number(values.batch, 64);
  batch = {
    x: tf.randomNormal([batchSize, ...inputShape]),
    y: tf.tensor1d(Int32Array.from({ length: batchSize }, () => random.int(10)), 'int32'),
  };
  lr = CNN_LR;
}

/** CPU seconds (user + system) of this process, worker threads included. */
const cpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

interface Request {
  run: 'train' | 'infer' | 'kernels';
  genotypes: Genotype[];
}

async function answer(request: Request): Promise<object> {
  const step = (g: Genotype) => void model.trainStep(g, batch, lr);
  if (request.run === 'kernels') {
    if (workers > 1) throw new Error('kernel calls are counted in one thread only (--workers 1)');
    const info = await tf.profile(() => step(request.genotypes[0]!));
    // Custom-gradient wrappers appear beside the kernels they run; count kernels only.
    return { kernelCalls: info.kernels.filter((k) => tf.getKernel(k.name, tf.getBackend())).length };
  }
  const [wall, cpu] = [performance.now(), cpuSeconds()];
  // Inference as the search scores: the whole list at once (several at a time over workers).
  if (request.run === 'infer') evaluateAll(model, request.genotypes.map((g) => ({ g, batch: { x: tf.clone(batch.x), y: tf.clone(batch.y) } })));
  else for (const g of request.genotypes) step(g);
  return { seconds: (performance.now() - wall) / 1000, cpuSeconds: cpuSeconds() - cpu };
}

console.log(JSON.stringify({ ready: true, backend: backend.detail, workers }));
for await (const line of createInterface({ input: process.stdin })) console.log(JSON.stringify(await answer(JSON.parse(line) as Request)));
tf.dispose([batch.x, batch.y]);
model.dispose();
