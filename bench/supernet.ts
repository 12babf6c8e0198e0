/*
 * `nni-enas bench supernet` and `bench all`: run each measurement in a fresh process (one
 * TensorFlow.js backend per process), collect their JSON lines, and print one table plus the
 * JSON lines. The identical PyTorch model (bench/torch_supernet.py) runs when a python3 with torch
 * is found, and every throughput gets its ratio to it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random } from '../common/random.js';
import { decisions, DEFAULT_SPECS, fromTokens, toParams, type Params } from '../search-spaces/spaces.js';
import type { BackendName } from '../trial/backend.js';
import { median } from './stats.js';

export type SupernetSpace = 'micro' | 'macro' | 'rnn';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** bench/torch_supernet.py beside the compiled scripts' source tree (dist/bench → bench). */
const TORCH_SCRIPT = join(BENCH_DIR, '..', '..', 'bench', 'torch_supernet.py');

/** NNI's own per-trial overhead in local mode: trial end → next start, measured on a real NNI (NNI-PROTOCOL.md appendix). */
export const NNI_TRIAL_GAP_SECONDS = 0.89;

export interface BenchRow {
  what: string;
  implementation: string;
  value: number;
  unit: string;
  /** Ours / PyTorch, when both ran. */
  ratio?: number;
}

export interface BenchOptions {
  spaces: SupernetSpace[];
  backends: BackendName[];
  steps: number;
  /** python3 with torch, or undefined to look for one. */
  python?: string;
  torchThreads: number;
  log: (line: string) => void;
}

/** Runs a script and returns its last JSON line, or the reason it failed. */
function runJson(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Record<string, unknown> | Error {
  const result = spawnSync(command, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  const lines = (result.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{'));
  if (result.status !== 0 || !lines.length) {
    // An uncaught error ends with Node's version line; the error's own line says why.
    const output = (result.stderr || result.error?.message || `exit ${result.status}`).trim().split('\n');
    return new Error(output.find((line) => /^\w*Error: /.test(line))?.trim() ?? output.at(-1));
  }
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

const node = (script: string, args: string[]) => runJson(process.execPath, [join(BENCH_DIR, `${script}.js`), ...args]);

/** A python3 that imports torch: Debian's python3-torch lives in /usr/bin/python3. */
export function findTorchPython(candidates = ['/usr/bin/python3', 'python3']): string | undefined {
  return candidates.find((python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
}

/** The reference search sizes on Fashion-MNIST shapes, for TypeScript and PyTorch alike. */
const CNN_ARGS: Record<'micro' | 'macro', string[]> = {
  micro: ['--channels', '20', '--layers', '6'],
  macro: ['--channels', '36', '--layers', '12'],
};
const RNN_ARGS = ['--hidden', '200', '--nodes', '12', '--batch', '32', '--bptt', '35'];

export function benchSupernets(options: BenchOptions): BenchRow[] {
  const rows: BenchRow[] = [];
  const python = options.python ?? findTorchPython();
  if (!python) options.log('PyTorch: no python3 with torch found (Debian: apt-get install python3-torch libopenblas0-pthread); no ratios');
  for (const space of options.spaces) {
    const unit = space === 'rnn' ? 'tokens/s' : 'images/s';
    let torch: Record<string, unknown> | undefined;
    if (python) {
      const args = space === 'rnn' ? RNN_ARGS : [...CNN_ARGS[space], '--batch', '64', '--eval-batch', '64'];
      options.log(`${space}: PyTorch, ${options.torchThreads} threads…`);
      const result = runJson(python, [TORCH_SCRIPT, '--space', space, '--steps', String(options.steps), '--threads', String(options.torchThreads), ...args]);
      if (result instanceof Error) options.log(`${space}: PyTorch failed: ${result.message}`);
      else {
        torch = result;
        const [train, infer] = space === 'rnn' ? ['train_tokens_per_s', 'infer_tokens_per_s'] : ['train_images_per_s', 'infer_images_per_s'];
        const impl = `${torch.framework} (${torch.threads} threads)`;
        rows.push({ what: `${space} train`, implementation: impl, value: Number(torch[train]), unit });
        rows.push({ what: `${space} inference`, implementation: impl, value: Number(torch[infer]), unit });
      }
    }
    // wasm runs one thread; the CNN supernets also run data-parallel over 2 worker threads, as an embedded search does.
    const runs = options.backends.flatMap((backend) => (space !== 'rnn' && backend !== 'tensorflow' ? [{ backend, workers: 1 }, { backend, workers: 2 }] : [{ backend, workers: 1 }]));
    for (const { backend, workers } of runs) {
      options.log(`${space}: TensorFlow.js ${backend}${workers > 1 ? `, ${workers} workers` : ''}…`);
      const result =
        space === 'rnn'
          ? node('supernet-rnn', ['--backend', backend, '--steps', String(options.steps), ...RNN_ARGS])
          : node('supernet-cnn', ['--backend', backend, '--space', space, '--steps', String(options.steps), '--batch', '64', '--workers', String(workers), ...CNN_ARGS[space]]);
      if (result instanceof Error) {
        options.log(`${space}: backend ${backend} not measured: ${result.message}`);
        continue;
      }
      const [train, infer] = space === 'rnn' ? ['trainTokensPerSecond', 'inferTokensPerSecond'] : ['trainImagesPerSecond', 'inferImagesPerSecond'];
      const torchTrain = torch && Number(torch[space === 'rnn' ? 'train_tokens_per_s' : 'train_images_per_s']);
      const torchInfer = torch && Number(torch[space === 'rnn' ? 'infer_tokens_per_s' : 'infer_images_per_s']);
      const impl = `tfjs ${String(result.backend)}`;
      rows.push({ what: `${space} train`, implementation: impl, value: Number(result[train]), unit, ratio: torchTrain ? Number(result[train]) / torchTrain : undefined });
      rows.push({ what: `${space} inference`, implementation: impl, value: Number(result[infer]), unit, ratio: torchInfer ? Number(result[infer]) / torchInfer : undefined });
      if (result.trainKernelCalls !== undefined)
        rows.push({ what: `${space} train step`, implementation: `${impl}: kernel calls`, value: Number(result.trainKernelCalls), unit: 'calls' });
    }
    const store = node('store-io', ['--space', space]);
    if (store instanceof Error) options.log(`${space}: store benchmark failed: ${store.message}`);
    else {
      const impl = `${store.tensors} tensors, ${store.megabytes} MB`;
      rows.push({ what: `${space} store save`, implementation: impl, value: Number(store.saveMs), unit: 'ms' });
      rows.push({ what: `${space} store save with merge`, implementation: impl, value: Number(store.mergeSaveMs), unit: 'ms' });
      rows.push({ what: `${space} store load`, implementation: impl, value: Number(store.loadMs), unit: 'ms' });
    }
    rows.push(...startup(space, options.log));
  }
  return rows;
}

/** Process start-up: the spawn, node, TensorFlow.js + backend, the supernet, the store load (median of 3). */
function startup(space: SupernetSpace, log: (line: string) => void): BenchRow[] {
  const walls: number[] = [];
  let phases: Record<string, unknown> | undefined;
  const store = mkdtempSync(join(tmpdir(), 'nni-enas-startup-'));
  try {
    for (let round = 0; round < 3; round++) {
      const start = performance.now();
      const result = node('startup', ['--space', space, '--store', store]);
      if (result instanceof Error) {
        log(`${space}: start-up benchmark failed: ${result.message}`);
        return [];
      }
      walls.push(performance.now() - start);
      phases = result;
    }
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
  const impl = String(phases!.backend);
  return [
    { what: `${space} process start-up, whole`, implementation: impl, value: Math.round(median(walls)), unit: 'ms' },
    { what: `${space} start-up: tfjs + backend`, implementation: impl, value: Number(phases!.importAndBackendMs), unit: 'ms' },
    { what: `${space} start-up: build supernet`, implementation: impl, value: Number(phases!.buildModelMs), unit: 'ms' },
    { what: `${space} start-up: store load`, implementation: impl, value: Number(phases!.storeLoadMs), unit: 'ms' },
  ];
}

/** Controller sample and update latency per space (bench/controller-latency.ts), on the tuner's backend. */
export function benchController(backend: BackendName, log: (line: string) => void): BenchRow[] {
  log(`controller latency on ${backend}…`);
  const result = spawnSync(process.execPath, [join(BENCH_DIR, 'controller-latency.js'), '--backend', backend, '--calls', '30'], {
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    log(`controller benchmark failed: ${(result.stderr ?? '').trim().split('\n').at(-1)}`);
    return [];
  }
  return result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      const r = JSON.parse(line) as Record<string, unknown>;
      return [
        { what: `controller ${r.space} propose`, implementation: `tfjs ${backend}`, value: Number(r.proposeMs), unit: 'ms' },
        { what: `controller ${r.space} update`, implementation: `tfjs ${backend}, ${r.numAggregate} rewards`, value: Number(r.updateMs), unit: 'ms' },
      ];
    });
}

/**
 * A default NNI trial run standalone (shared mode, micro, Fashion-MNIST, default S and V), its
 * wall time and the share NNI's own per-trial gap would add to it.
 */
export function benchDefaultTrial(log: (line: string) => void): BenchRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'nni-enas-trial-'));
  try {
    const params = JSON.stringify(randomMicroParams());
    const trial = join(BENCH_DIR, '..', 'trial', 'main.js');
    log('a default shared-mode trial (micro, Fashion-MNIST)…');
    const start = performance.now();
    const result = spawnSync(process.execPath, [trial, '--mode', 'shared', '--dataset', 'fashion-mnist', '--params', params, '--store', join(dir, 'store'), '--output', dir], {
      encoding: 'utf8',
      env: { ...process.env, NNI_TRIAL_COMMAND_CHANNEL: '', NNI_PLATFORM: '' },
    });
    const seconds = (performance.now() - start) / 1000;
    if (result.status !== 0) {
      log(`default trial failed: ${(result.stderr ?? '').trim().split('\n').at(-1)}`);
      return [];
    }
    return [
      { what: 'default trial wall time', implementation: 'shared, micro, Fashion-MNIST', value: Math.round(seconds * 10) / 10, unit: 's' },
      {
        what: "NNI's per-trial overhead share",
        implementation: `${NNI_TRIAL_GAP_SECONDS} s gap (NNI-PROTOCOL.md appendix)`,
        value: Math.round((1000 * NNI_TRIAL_GAP_SECONDS) / (NNI_TRIAL_GAP_SECONDS + seconds)) / 10,
        unit: '%',
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A fixed-seed random micro architecture on the default space, as NNI would hand it to a trial. */
function randomMicroParams(): Params {
  const spec = DEFAULT_SPECS.micro;
  const random = new Random(12345);
  return toParams(fromTokens(spec, decisions(spec).map((d) => random.int(d.choices.length))), spec);
}

/** The rows as a markdown table. */
export function formatRows(rows: readonly BenchRow[]): string {
  const lines = ['| measurement | implementation | value | unit | ours / PyTorch |', '| :-- | :-- | --: | :-- | --: |'];
  for (const r of rows)
    lines.push(`| ${r.what} | ${r.implementation} | ${Number(r.value.toPrecision(4))} | ${r.unit} | ${r.ratio === undefined ? '' : r.ratio.toFixed(2)} |`);
  return lines.join('\n');
}
