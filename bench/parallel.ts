/*
 * Data parallelism over worker threads (trial/parallel.ts) against the plain single-process model:
 * training images per second of the micro supernet on Fashion-MNIST shapes (28×28×1, 10 classes),
 * the plain model vs DataParallelModel with 1 and with 2 workers, in interleaved rounds (each
 * round runs every variant on the same architectures), medians over rounds; then where a
 * data-parallel step spends its time. The load average is printed with every number: on a shared
 * machine the workers compete with everything else for the cores.
 *
 *   node dist/bench/parallel.js [--config big|small|both] [--batch 64] [--steps 3] [--rounds 5]
 *
 * big: C 20, 6(+2) cells of 5 nodes (the reference micro search layout); small: C 8, 3(+2) cells
 * of 5 nodes. Random normal images, random labels, a fresh uniformly sampled architecture per step.
 * Prints a readable report, then one JSON line per config.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../common/random.js';
import type { MicroGenotype } from '../search-spaces/genotype.js';
import { decisions, DEFAULT_SPECS, fromTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import type { Batch, TrainableModel } from '../trial/model.js';
import { DataParallelModel, type ModelRecipe } from '../trial/parallel.js';
import { buildFromRecipe, threadCpuMs } from '../trial/parallel-recipe.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'both' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '5' },
  },
});
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const rounds = Number(values.rounds);
const LR = 0.05;
const backend = await setupBackend('wasm');

const CONFIGS: Record<string, { channels: number; layers: number }> = { big: { channels: 20, layers: 6 }, small: { channels: 8, layers: 3 } };
const chosen = values.config === 'both' ? ['big', 'small'] : [values.config];
for (const name of chosen) if (!CONFIGS[name]) throw new Error('--config must be big, small or both');

const load = () => loadavg()[0]!;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number, digits = 1) => x.toFixed(digits);

console.log(`backend: ${backend.detail}; batch ${batchSize}, ${steps} steps per measurement, ${rounds} rounds`);
const report: Record<string, unknown>[] = [];

for (const name of chosen) {
  const { channels, layers } = CONFIGS[name]!;
  const recipe: ModelRecipe = { kind: 'micro-supernet', config: { inputShape: [28, 28, 1], numClasses: 10, channels, layers, nodes: 5, seed: 1 } };
  const spec: SpaceSpec = { ...DEFAULT_SPECS.micro, nodes: 5 } as SpaceSpec;
  const data = new Random(2);
  const batch: Batch = {
    x: tf.randomNormal([batchSize, 28, 28, 1], 0, 1, 'float32', 3),
    y: tf.tensor1d(Int32Array.from({ length: batchSize }, () => data.int(10)), 'int32'),
  };
  const variants: { label: string; model: TrainableModel<MicroGenotype> }[] = [
    { label: 'plain', model: buildFromRecipe(recipe) as TrainableModel<MicroGenotype> },
    { label: '1 worker', model: new DataParallelModel<MicroGenotype>(recipe, { workers: 1 }) },
    { label: '2 workers', model: new DataParallelModel<MicroGenotype>(recipe, { workers: 2 }) },
  ];
  const archRandom = new Random(7);
  const arch = () => fromTokens(spec, decisions(spec).map((d) => archRandom.int(d.choices.length))) as MicroGenotype;
  // Warm-up: first-use kernel setup, lazily built constants.
  const warm = arch();
  for (const v of variants) v.model.trainStep(warm, batch, LR);

  const rates = new Map<string, number[]>(variants.map((v) => [v.label, []]));
  const loads = new Map<string, number[]>(variants.map((v) => [v.label, []]));
  const split = { roundTripMs: 0, computeMs: 0, applyMs: 0, averageMs: 0, splitMs: 0, toWorkerMs: 0, workerCpuMs: 0, steps: 0, wallMs: 0 };
  // CPU milliseconds per step, whatever share of the cores each thread got: main thread + workers.
  const cpu = new Map<string, { main: number; workers: number; steps: number }>(variants.map((v) => [v.label, { main: 0, workers: 0, steps: 0 }]));
  for (let r = 0; r < rounds; r++) {
    const archs = Array.from({ length: steps }, arch);
    for (const v of variants) {
      const dp = v.model instanceof DataParallelModel ? v.model : undefined;
      dp?.resetTimings();
      const start = performance.now();
      const cpuStart = threadCpuMs();
      for (const g of archs) v.model.trainStep(g, batch, LR);
      const ms = performance.now() - start;
      const c = cpu.get(v.label)!;
      c.main += threadCpuMs() - cpuStart;
      c.workers += dp?.timings.workerCpuMs ?? 0;
      c.steps += steps;
      rates.get(v.label)!.push((steps * batchSize * 1000) / ms);
      loads.get(v.label)!.push(load());
      if (dp && dp.workers === 2) {
        for (const key of ['roundTripMs', 'computeMs', 'applyMs', 'averageMs', 'splitMs', 'toWorkerMs', 'workerCpuMs', 'steps'] as const) split[key] += dp.timings[key];
        split.wallMs += ms;
      }
    }
    console.log(
      `  ${name} round ${r + 1}: ` +
        variants.map((v) => `${v.label} ${fmt(rates.get(v.label)!.at(-1)!)} img/s (load ${fmt(loads.get(v.label)!.at(-1)!)})`).join(', '),
    );
  }
  const result: Record<string, unknown> = { config: name, channels, layers, nodes: 5, batch: batchSize };
  console.log(`\nmicro supernet ${name}: C ${channels}, ${layers + 2} cells of 5 nodes, 28×28×1, batch ${batchSize}`);
  for (const v of variants) {
    const rate = median(rates.get(v.label)!);
    const l = median(loads.get(v.label)!);
    const c = cpu.get(v.label)!;
    const cpuPerStep = { main: c.main / c.steps, workers: c.workers / c.steps };
    console.log(
      `  ${v.label.padEnd(10)} ${fmt(rate).padStart(7)} images/s (median of ${rounds}; load average ${fmt(l)});` +
        ` CPU per step: main thread ${fmt(cpuPerStep.main, 0)} ms + workers ${fmt(cpuPerStep.workers, 0)} ms`,
    );
    result[v.label] = { imagesPerSecond: rate, loadAverage: l, all: rates.get(v.label), cpuMsPerStep: cpuPerStep };
  }
  const per = (x: number) => x / split.steps;
  const wall = per(split.wallMs);
  const compute = per(split.computeMs);
  const average = per(split.averageMs);
  const shards = per(split.splitMs);
  const apply = per(split.applyMs);
  const toWorker = per(split.toWorkerMs);
  const roundTrip = per(split.roundTripMs);
  console.log(
    `  2 workers, per step: wall ${fmt(wall)} ms = batch to shards ${fmt(shards, 2)} ms` +
      ` + round trip ${fmt(roundTrip)} ms [slowest worker's forward+backward+packing ${fmt(compute)} ms;` +
      ` posting → slowest worker starts ${fmt(toWorker)} ms (message latency + the tail of the previous update);` +
      ` rest of the round trip (answers, waiting on the slower worker) ${fmt(roundTrip - compute - toWorker)} ms]` +
      ` + gradient averaging and posting the mean ${fmt(average)} ms + rest ${fmt(wall - shards - roundTrip - average)} ms;` +
      ` the update itself takes ${fmt(apply)} ms in the slowest worker, overlapping the main thread`,
  );
  result['split2'] = { wallMs: wall, shardMs: shards, roundTripMs: roundTrip, computeMs: compute, toWorkerMs: toWorker, averageMs: average, applyMs: apply };
  report.push(result);
  for (const v of variants) v.model.dispose();
  tf.dispose([batch.x, batch.y]);
}
for (const r of report) console.log(JSON.stringify(r));
