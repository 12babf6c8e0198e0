/*
 * Throughput of the RNN supernet (trial/supernet/rnn.ts) on a KJV-sized vocabulary: training and
 * inference tokens per second over uniformly sampled cells, then where one training step and one
 * evaluation spend their time, per kernel (tf.profile), and how many kernel calls they make.
 *
 *   node dist/bench/supernet-rnn.js [--backend wasm] [--hidden 200] [--nodes 12] [--batch 32] [--bptt 35] [--steps 6] [--no-batch-norm]
 *
 * Tokens come from the KJV corpus in ../shared when present (its 10k vocabulary), else uniform
 * random ids over 10k. Rates are given per wall second and per CPU second of this process: on a
 * shared machine the second is the steadier one (tfjs-wasm runs on one thread). Prints a
 * human-readable report, then one JSON line with the numbers.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../common/random.js';
import { RNN_ACTIVATIONS, type RnnGenotype } from '../search-spaces/genotype.js';
import { BACKENDS, setupBackend, type BackendName } from '../trial/backend.js';
import { loadCorpus, TextBatcher } from '../trial/data/index.js';
import type { Batch } from '../trial/model.js';
import { RNN_SEARCH_TRAINING, RnnSupernet } from '../trial/supernet/rnn.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    hidden: { type: 'string', default: '200' },
    nodes: { type: 'string', default: '12' },
    batch: { type: 'string', default: String(RNN_SEARCH_TRAINING.batchSize) },
    bptt: { type: 'string', default: String(RNN_SEARCH_TRAINING.bpttSteps) },
    steps: { type: 'string', default: '6' },
    'no-batch-norm': { type: 'boolean', default: false },
  },
});
const backendName = values.backend as BackendName;
if (!BACKENDS.includes(backendName)) throw new Error(`--backend must be one of ${BACKENDS.join(', ')}`);
const [hiddenSize, nodes, batchSize, bptt, steps] = [values.hidden, values.nodes, values.batch, values.bptt, values.steps].map(Number) as [
  number,
  number,
  number,
  number,
  number,
];
const backend = await setupBackend(backendName);

const KJV_DIR = fileURLToPath(new URL('../../../shared/data/kjv-ptb', import.meta.url));
const VOCAB = 10_000;
const corpus = existsSync(KJV_DIR) ? loadCorpus(KJV_DIR) : undefined;
const random = new Random(1);
const tokens = corpus?.train ?? Int32Array.from({ length: 200_000 }, () => random.int(VOCAB));
const vocabSize = corpus?.vocab.length ?? VOCAB;
const batcher = new TextBatcher(tokens, batchSize, bptt);
const batchNorm = !values['no-batch-norm'];
const model = new RnnSupernet({ vocabSize, hiddenSize, nodes, batchNorm });

const sampleCell = (): RnnGenotype => ({
  space: 'rnn',
  nodes: Array.from({ length: nodes }, (_, j) => ({
    prev: j === 0 ? -1 : random.int(j),
    act: RNN_ACTIVATIONS[random.int(RNN_ACTIVATIONS.length)]!,
  })),
});

/** CPU milliseconds (user + system) this process has used. */
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** Runs `f` on a fresh window and cell per call; returns tokens per wall second and per CPU second. */
function throughput(calls: number, f: (g: RnnGenotype, batch: Batch) => void): { wall: number; cpu: number } {
  let wallMs = 0;
  let cpu = 0;
  for (let i = 0; i < calls; i++) {
    const batch = batcher.next();
    const g = sampleCell();
    const [start, cpuStart] = [performance.now(), cpuMs()];
    f(g, batch);
    wallMs += performance.now() - start;
    cpu += cpuMs() - cpuStart;
    tf.dispose([batch.x, batch.y]);
  }
  const tokens = calls * batchSize * bptt;
  return { wall: tokens / (wallMs / 1000), cpu: tokens / (cpu / 1000) };
}

const train = (g: RnnGenotype, batch: Batch): void => void model.trainStep(g, batch, RNN_SEARCH_TRAINING.learningRate);
const infer = (g: RnnGenotype, batch: Batch): void => void model.evaluate(g, batch);

throughput(2, train);
throughput(2, infer);
const trainRate = throughput(steps, train);
const inferRate = throughput(steps, infer);

interface KernelRow {
  kernel: string;
  calls: number;
  ms: number;
}

/**
 * One profiled call: per-kernel time and kernel count, beside the median unprofiled wall and CPU
 * times of 3 calls on the same cell and window.
 */
async function breakdown(
  f: (g: RnnGenotype, batch: Batch) => void,
): Promise<{ wallMs: number; cpuMs: number; kernelCalls: number; rows: KernelRow[] }> {
  const batch = batcher.next();
  const g = sampleCell();
  const runs = [0, 1, 2].map(() => {
    const [start, cpuStart] = [performance.now(), cpuMs()];
    f(g, batch);
    return { wall: performance.now() - start, cpu: cpuMs() - cpuStart };
  });
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[1]!;
  const wallMs = median(runs.map((r) => r.wall));
  const callCpuMs = median(runs.map((r) => r.cpu));
  const info = await tf.profile(() => f(g, batch));
  tf.dispose([batch.x, batch.y]);
  const rows = new Map<string, KernelRow>();
  for (const k of info.kernels) {
    // BatchMatMul is split by role: the three V-sized softmax products (told apart by where V
    // sits in the operands), the batch norms' row means (a [1,R] row of weights), the cell's.
    const role = (): string => {
      const [a, b] = k.inputShapes as [number[], number[]];
      if (b[1] === vocabSize) return 'V-sized: logits = h·Eᵀ';
      if (a[0] === vocabSize) return 'V-sized: dE = dlogitsᵀ·h';
      if (a[1] === vocabSize) return 'V-sized: dh = dlogits·E';
      return a[0] === 1 ? 'norm means' : 'cell';
    };
    const key = k.name === 'BatchMatMul' ? `BatchMatMul (${role()})` : k.name;
    const row = rows.get(key) ?? { kernel: key, calls: 0, ms: 0 };
    row.calls += 1;
    row.ms += k.kernelTimeMs as number;
    rows.set(key, row);
  }
  return { wallMs, cpuMs: callCpuMs, kernelCalls: info.kernels.length, rows: [...rows.values()].sort((a, b) => b.ms - a.ms) };
}

const trainProfile = await breakdown(train);
const inferProfile = await breakdown(infer);

const print = (title: string, p: Awaited<ReturnType<typeof breakdown>>): void => {
  const kernelMs = p.rows.reduce((s, r) => s + r.ms, 0);
  console.log(
    `\n${title}: ${p.wallMs.toFixed(0)} ms wall, ${p.cpuMs.toFixed(0)} ms CPU, ${p.kernelCalls} kernel calls ` +
      `(${(p.kernelCalls / bptt).toFixed(0)} per time step); profiled: ${kernelMs.toFixed(0)} ms inside kernels`,
  );
  console.log('  kernel                                calls      ms  of kernel time');
  for (const r of p.rows.filter((row) => row.ms >= 0.005 * kernelMs))
    console.log(`  ${r.kernel.padEnd(36)} ${String(r.calls).padStart(6)} ${r.ms.toFixed(1).padStart(7)} ${((100 * r.ms) / kernelMs).toFixed(1).padStart(6)}%`);
};

console.log(
  `RNN supernet, ${backend.detail}: V=${vocabSize} H=${hiddenSize} nodes=${nodes} batch ${batchSize}×${bptt}, ` +
    `batch norms ${batchNorm ? 'on' : 'off'}, ` +
    `random cells, ${steps} timed steps after 2 warm-up`,
);
console.log(
  `train ${trainRate.wall.toFixed(0)} tokens/s (${trainRate.cpu.toFixed(0)} per CPU second), ` +
    `inference ${inferRate.wall.toFixed(0)} tokens/s (${inferRate.cpu.toFixed(0)} per CPU second)`,
);
print('one training step', trainProfile);
print('one evaluation', inferProfile);
console.log(
  JSON.stringify({
    bench: 'supernet-rnn',
    backend: backend.detail,
    vocabSize,
    hiddenSize,
    nodes,
    batchNorm,
    batchSize,
    bptt,
    trainTokensPerSecond: Math.round(trainRate.wall),
    trainTokensPerCpuSecond: Math.round(trainRate.cpu),
    inferTokensPerSecond: Math.round(inferRate.wall),
    inferTokensPerCpuSecond: Math.round(inferRate.cpu),
    trainStepMs: Math.round(trainProfile.wallMs),
    trainStepCpuMs: Math.round(trainProfile.cpuMs),
    trainKernelCalls: trainProfile.kernelCalls,
    evalMs: Math.round(inferProfile.wallMs),
    evalCpuMs: Math.round(inferProfile.cpuMs),
    evalKernelCalls: inferProfile.kernelCalls,
  }),
);
model.dispose();
