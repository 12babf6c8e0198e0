/*
 * Throughput of the CNN supernets (trial/supernet/{micro,macro}.ts) on Fashion-MNIST shapes
 * (28×28×1, 10 classes): training and inference images per second over uniformly sampled
 * architectures (a fresh one per step, as in search), then where one training step spends its
 * time: per kernel (tf.profile), in the host-side optimizer, and in the framework around them.
 * On a shared machine, compare only numbers from the same run.
 *
 *   node dist/bench/supernet-cnn.js [--backend wasm] [--space micro|macro|both] [--batch 64] [--steps 5]
 *     [--channels C] [--layers L] [--workers N]
 *
 * --workers N > 1 trains and evaluates data-parallel over N worker threads (trial/parallel.ts), the
 * way an embedded search uses both cores; the per-kernel profile is then left out (the kernels run
 * in the workers, where tf.profile in this thread cannot see them; bench/parallel.ts splits that step).
 *
 * Defaults are the reference search layouts (ENAS.md §1): micro 20 channels, 6(+2) cells of
 * 5 nodes; macro 36 channels, 12 layers. Inputs are random normal images with random labels (the
 * data does not change the cost). Prints a readable report, then one JSON line per space.
 */
import { parseArgs } from 'node:util';
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../common/random.js';
import type { MacroGenotype, MicroGenotype } from '../search-spaces/genotype.js';
import { decisions, DEFAULT_SPECS, fromTokens } from '../search-spaces/spaces.js';
import { BACKENDS, setupBackend, type BackendName } from '../trial/backend.js';
import type { Batch, TrainableModel } from '../trial/model.js';
import { NesterovMomentum } from '../trial/optim.js';
import { parallelize } from '../trial/parallel.js';
import { MACRO_SEARCH_DEFAULTS, MacroSupernet } from '../trial/supernet/macro.js';
import { MICRO_SEARCH_DEFAULTS, MicroSupernet } from '../trial/supernet/micro.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    space: { type: 'string', default: 'both' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '5' },
    channels: { type: 'string' },
    layers: { type: 'string' },
    workers: { type: 'string', default: '1' },
  },
});
const backendName = values.backend as BackendName;
if (!BACKENDS.includes(backendName)) throw new Error(`--backend must be one of ${BACKENDS.join(', ')}`);
if (!['micro', 'macro', 'both'].includes(values.space)) throw new Error('--space must be micro, macro or both');
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const workers = Number(values.workers);
if (!(Number.isInteger(workers) && workers >= 1)) throw new Error('--workers must be a positive integer');
const backend = await setupBackend(backendName, undefined, { replicas: workers });
const random = new Random(1);
const LR = 0.05;

// Host time of the optimizer, measured by wrapping its one entry point.
let optimizerMs = 0;
const unwrapped = NesterovMomentum.prototype.apply;
NesterovMomentum.prototype.apply = function (this: NesterovMomentum, ...args: Parameters<typeof unwrapped>) {
  const start = performance.now();
  unwrapped.call(this, ...args);
  optimizerMs += performance.now() - start;
};

function randomBatch(): Batch {
  return {
    x: tf.randomNormal([batchSize, 28, 28, 1]),
    y: tf.tensor1d(Int32Array.from({ length: batchSize }, () => random.int(10)), 'int32'),
  };
}

interface KernelRow {
  kernel: string;
  calls: number;
  ms: number;
}

interface Profile {
  wallMs: number;
  optimizerMs: number;
  kernelCalls: number;
  rows: KernelRow[];
}

/** Throughput of training and inference, then one profiled step of each; prints and disposes the model. */
async function run<G extends MicroGenotype | MacroGenotype>(label: string, plain: TrainableModel<G>, sample: () => G, describe: string) {
  const model = parallelize(plain, workers);
  const batch = randomBatch();
  /** Runs `f` with a fresh architecture per call; returns images per second. */
  const throughput = (calls: number, f: (g: G) => void): number => {
    let ms = 0;
    for (let i = 0; i < calls; i++) {
      const g = sample();
      const start = performance.now();
      f(g);
      ms += performance.now() - start;
    }
    return (calls * batchSize) / (ms / 1000);
  };
  const train = (g: G): void => void model.trainStep(g, batch, LR);
  const infer = (g: G): void => void model.evaluate(g, batch);
  throughput(2, train);
  throughput(2, infer);
  const trainImagesPerSecond = throughput(steps, train);
  const inferImagesPerSecond = throughput(steps, infer);

  /** One profiled call, its wall time measured around the same call so the parts add up. */
  const profile = async (f: (g: G) => void): Promise<Profile> => {
    const g = sample();
    f(g);
    optimizerMs = 0;
    const start = performance.now();
    const info = await tf.profile(() => f(g));
    const wallMs = performance.now() - start;
    const measuredOptimizerMs = optimizerMs;
    const rows = new Map<string, KernelRow>();
    for (const k of info.kernels) {
      // Custom-gradient ops (batch norm, cross-entropy) appear as one entry wrapping kernels that
      // are listed on their own; leave the wrapper out so nothing is counted twice.
      if (!tf.getKernel(k.name, tf.getBackend())) continue;
      const row = rows.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0 };
      row.calls += 1;
      row.ms += k.kernelTimeMs as number;
      rows.set(k.name, row);
    }
    const sorted = [...rows.values()].sort((a, b) => b.ms - a.ms);
    return { wallMs, optimizerMs: measuredOptimizerMs, kernelCalls: sorted.reduce((n, r) => n + r.calls, 0), rows: sorted };
  };
  const threads = workers > 1 ? `, data-parallel over ${workers} worker threads` : '';
  const [trainProfile, inferProfile] = workers > 1 ? [null, null] : [await profile(train), await profile(infer)];
  tf.dispose([batch.x, batch.y]);

  console.log(`\n${label}, ${backend.detail}${threads}: ${describe}, batch ${batchSize}, random architectures, ${steps} timed steps after 2 warm-up`);
  console.log(`train ${trainImagesPerSecond.toFixed(1)} images/s, inference ${inferImagesPerSecond.toFixed(0)} images/s`);
  const print = (title: string, p: Profile): void => {
    const kernelMs = p.rows.reduce((s, r) => s + r.ms, 0);
    const outside = p.wallMs - kernelMs - p.optimizerMs;
    console.log(
      `${title} (profiled): ${p.wallMs.toFixed(0)} ms wall = ${kernelMs.toFixed(0)} ms in ${p.kernelCalls} kernel calls + ` +
        `${p.optimizerMs.toFixed(0)} ms optimizer (host) + ${outside.toFixed(0)} ms framework, profiler and host-side work`,
    );
    console.log('  kernel                                  calls      ms   share of wall');
    for (const r of p.rows.filter((row) => row.ms >= 0.005 * kernelMs))
      console.log(`  ${r.kernel.padEnd(38)} ${String(r.calls).padStart(6)} ${r.ms.toFixed(1).padStart(7)} ${((100 * r.ms) / p.wallMs).toFixed(1).padStart(6)}%`);
  };
  if (trainProfile && inferProfile) {
    print('one training step', trainProfile);
    print('one evaluation', inferProfile);
  }
  console.log(
    JSON.stringify({
      bench: 'supernet-cnn',
      space: label,
      backend: `${backend.detail}${threads}`,
      workers,
      batchSize,
      trainImagesPerSecond: Math.round(trainImagesPerSecond * 10) / 10,
      inferImagesPerSecond: Math.round(inferImagesPerSecond),
      ...(trainProfile &&
        inferProfile && {
          trainStepMs: Math.round(trainProfile.wallMs),
          trainKernelCalls: trainProfile.kernelCalls,
          optimizerMs: Math.round(trainProfile.optimizerMs),
          evalMs: Math.round(inferProfile.wallMs),
          evalKernelCalls: inferProfile.kernelCalls,
        }),
    }),
  );
  model.dispose();
}

if (values.space !== 'macro') {
  const config = {
    ...MICRO_SEARCH_DEFAULTS,
    inputShape: [28, 28, 1] as [number, number, number],
    channels: Number(values.channels ?? MICRO_SEARCH_DEFAULTS.channels),
    layers: Number(values.layers ?? MICRO_SEARCH_DEFAULTS.layers),
  };
  const spec = { ...DEFAULT_SPECS.micro, nodes: config.nodes };
  const sample = (): MicroGenotype => fromTokens(spec, decisions(spec).map((d) => random.int(d.choices.length))) as MicroGenotype;
  await run('micro supernet', new MicroSupernet(config), sample, `C=${config.channels}, ${config.layers + 2} cells × ${config.nodes} nodes, aux head`);
}
if (values.space !== 'micro') {
  const config = {
    ...MACRO_SEARCH_DEFAULTS,
    inputShape: [28, 28, 1] as [number, number, number],
    channels: Number(values.channels ?? MACRO_SEARCH_DEFAULTS.channels),
    layers: Number(values.layers ?? MACRO_SEARCH_DEFAULTS.layers),
  };
  const spec = { ...DEFAULT_SPECS.macro, layers: config.layers };
  const sample = (): MacroGenotype => fromTokens(spec, decisions(spec).map((d) => random.int(d.choices.length))) as MacroGenotype;
  await run('macro supernet', new MacroSupernet(config), sample, `C=${config.channels}, ${config.layers} layers`);
}
