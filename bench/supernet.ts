/*
 * `nni-enas bench supernet` and `bench all`: the supernets' training and inference throughput on
 * every TensorFlow.js backend present and in the identical PyTorch model (bench/torch_supernet.py)
 * of every PyTorch given or found, in one interleaved run: each implementation is one warm process
 * (bench/supernet-serve.ts, torch_supernet.py --serve), and round by round each runs the same
 * sampled architectures in turn, in rotating order, so that outside load falls on all alike.
 * Beside each throughput, the achieved GFLOP/s from the FLOPs of exactly those architectures
 * (bench/flops.ts); the ratio divides by the best PyTorch figure of the measurement. Then store
 * save/load and process start-up, each in fresh processes.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Random } from '../common/random.js';
import type { Genotype, MacroGenotype, MicroGenotype } from '../search-spaces/genotype.js';
import { decisions, DEFAULT_SPECS, fromTokens, toParams, type Params, type SpaceSpec } from '../search-spaces/spaces.js';
import type { BackendName } from '../trial/backend.js';
import { macroForwardFlops, microForwardFlops, rnnForwardFlopsPerToken, TRAINING_FLOPS_FACTOR } from './flops.js';
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
  /** Achieved GFLOP/s of a throughput (bench/flops.ts convention). */
  gflops?: number;
  /** Ours / the best PyTorch figure of the same measurement, when PyTorch ran. */
  ratio?: number;
  /** This row is that best PyTorch figure. */
  reference?: boolean;
  /** Throughput of each round, in `unit`. */
  rounds?: number[];
}

/** Rows, and the lines printed under their table (conventions, load). */
export interface BenchReport {
  rows: BenchRow[];
  notes: string[];
}

export interface BenchOptions {
  spaces: SupernetSpace[];
  backends: BackendName[];
  /** Interleaved rounds; every implementation runs `steps` training steps per round and scores max(steps, SCORED_PER_ROUND) architectures. */
  rounds: number;
  steps: number;
  /** Pythons with torch given by the user; Debian's python3-torch is added when found. */
  torchPythons: string[];
  torchThreads: number[];
  log: (line: string) => void;
}

/** Runs a script and returns its last JSON line, or the reason it failed. */
function runJson(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Record<string, unknown> | Error {
  const result = spawnSync(command, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  const lines = (result.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{'));
  if (result.status !== 0 || !lines.length) return new Error(failureLine(result.stderr || result.error?.message || `exit ${result.status}`));
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

/** The line of a failed process's stderr that says why: an uncaught error ends with Node's version line. */
function failureLine(stderr: string): string {
  const output = stderr.trim().split('\n');
  return output.find((line) => /^\w*Error: /.test(line))?.trim() ?? output.at(-1) ?? 'no output';
}

const node = (script: string, args: string[]) => runJson(process.execPath, [join(BENCH_DIR, `${script}.js`), ...args]);

/** A python3 that imports torch: Debian's python3-torch lives in /usr/bin/python3. */
export function findTorchPython(candidates = ['/usr/bin/python3', 'python3']): string | undefined {
  return candidates.find((python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
}

/** torch.__version__ of a python, or undefined if it cannot import torch. */
function torchVersion(python: string): string | undefined {
  const result = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/**
 * The pythons to measure, one per torch version: the given ones (each must import torch: the
 * error names the flag), then Debian's when found.
 */
export function torchPythons(given: readonly string[]): { python: string; version: string }[] {
  const found: { python: string; version: string }[] = [];
  for (const python of given) {
    const version = torchVersion(python);
    if (!version) throw new Error(`--torch-python ${python}: cannot import torch there`);
    if (!found.some((f) => f.version === version)) found.push({ python, version });
  }
  const debian = findTorchPython();
  const version = debian && torchVersion(debian);
  if (debian && version && !found.some((f) => f.version === version)) found.push({ python: debian, version });
  return found;
}

/** The reference search sizes on Fashion-MNIST shapes, for TypeScript and PyTorch alike. */
const SIZES: Record<SupernetSpace, string[]> = {
  micro: ['--channels', '20', '--layers', '6', '--nodes', '5', '--batch', '64'],
  macro: ['--channels', '36', '--layers', '12', '--batch', '64'],
  rnn: ['--hidden', '200', '--nodes', '12', '--batch', '32', '--bptt', '35', '--vocab', '10000'],
};
const IMAGE = { inputShape: [28, 28, 1] as [number, number, number], numClasses: 10 };
const MICRO = { ...IMAGE, channels: 20, layers: 6, nodes: 5, auxHead: true };
const MACRO = { ...IMAGE, channels: 36, layers: 12 };
const RNN = { hiddenSize: 200, nodes: 12, vocabSize: 10_000, batch: 32, bptt: 35 };
const CNN_BATCH = 64;
/** Architectures each implementation scores per round: one controller update's samples (the rnn preset's numAggregate). */
const SCORED_PER_ROUND = 10;

/** Examples per training and per inference step. */
const EXAMPLES: Record<SupernetSpace, number> = { micro: CNN_BATCH, macro: CNN_BATCH, rnn: RNN.batch * RNN.bptt };
const SPECS: Record<SupernetSpace, SpaceSpec> = {
  micro: { ...DEFAULT_SPECS.micro, nodes: MICRO.nodes } as SpaceSpec,
  macro: { ...DEFAULT_SPECS.macro, layers: MACRO.layers } as SpaceSpec,
  rnn: { ...DEFAULT_SPECS.rnn, nodes: RNN.nodes } as SpaceSpec,
};

/** Forward FLOPs per example of `g`, in training (the micro aux head) or inference. */
function forwardFlops(space: SupernetSpace, g: Genotype, training: boolean): number {
  if (space === 'micro') return microForwardFlops(g as MicroGenotype, MICRO, training);
  if (space === 'macro') return macroForwardFlops(g as MacroGenotype, MACRO);
  return rnnForwardFlopsPerToken(RNN);
}

/** A benchmark process answering one JSON line per JSON request line (supernet-serve.ts, torch_supernet.py --serve). */
class StepServer {
  private readonly waiting: ((line: string | Error) => void)[] = [];
  private stderr = '';
  private exited = false;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('{')) this.waiting.shift()?.(line);
    });
    child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-20_000)));
    child.on('close', () => {
      this.exited = true;
      for (const resolve of this.waiting.splice(0)) resolve(new Error(failureLine(this.stderr)));
    });
  }

  /** Starts it and waits for its `ready` line; the first line of its answer. */
  static async start(command: string, args: string[]): Promise<{ server: StepServer; ready: Record<string, unknown> }> {
    const server = new StepServer(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    return { server, ready: await server.next() };
  }

  private next(): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new Error(failureLine(this.stderr)));
    return new Promise((resolve, reject) =>
      this.waiting.push((line) => (line instanceof Error ? reject(line) : resolve(JSON.parse(line) as Record<string, unknown>))),
    );
  }

  request(body: object): Promise<Record<string, unknown>> {
    const answer = this.next();
    if (!this.exited) this.child.stdin.write(JSON.stringify(body) + '\n');
    return answer;
  }

  /** Ends its stdin and waits for it to exit. */
  close(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.on('close', () => resolve());
      this.child.stdin.end();
    });
  }
}

/** One measured implementation: a server, and for PyTorch the thread count of its requests. */
interface Implementation {
  label: string;
  server: StepServer;
  threads?: number;
  torch: boolean;
  /** tfjs in one thread: tf.profile can count its kernel calls. */
  countsKernels: boolean;
  train: Timing;
  infer: Timing;
}

interface Timing {
  seconds: number;
  flops: number;
  examples: number;
  rounds: number[];
}

const timing = (): Timing => ({ seconds: 0, flops: 0, examples: 0, rounds: [] });
const loadLine = (): string => loadavg().map((l) => l.toFixed(2)).join(' / ');

/** The warm servers of one space: every tfjs backend (one thread, and data-parallel) and every PyTorch. */
async function startImplementations(space: SupernetSpace, options: BenchOptions, pythons: { python: string; version: string }[]): Promise<Implementation[]> {
  const tfjs = options.backends.flatMap((backend) =>
    (backend !== 'cpu' ? [1, 2] : [1]).map((workers) => ({
      label: `tfjs ${backend}${workers > 1 ? `, ${workers} workers` : ''}`,
      command: process.execPath,
      args: [join(BENCH_DIR, 'supernet-serve.js'), '--space', space, '--backend', backend, '--workers', String(workers), ...SIZES[space]],
      torch: false,
      countsKernels: workers === 1,
    })),
  );
  const torch = pythons.map(({ python, version }) => ({
    label: `pytorch ${version}`,
    command: python,
    args: [TORCH_SCRIPT, '--space', space, '--serve', ...SIZES[space], ...(space === 'rnn' ? [] : ['--eval-batch', String(CNN_BATCH)])],
    torch: true,
    countsKernels: false,
  }));
  const started = await Promise.all(
    [...torch, ...tfjs].map(async (spec) => {
      try {
        const { server, ready } = await StepServer.start(spec.command, spec.args);
        options.log(`${space}: ${spec.label} ready${ready.backend ? ` (${String(ready.backend)})` : ''}`);
        return { spec, server };
      } catch (error) {
        options.log(`${space}: ${spec.label} not measured: ${(error as Error).message}`);
        return undefined;
      }
    }),
  );
  return started.flatMap((s): Implementation[] =>
    !s
      ? []
      : s.spec.torch
        ? options.torchThreads.map((threads) => ({ label: `${s.spec.label}, ${threads} thread${threads > 1 ? 's' : ''}`, server: s.server, threads, torch: true, countsKernels: false, train: timing(), infer: timing() }))
        : [{ label: s.spec.label, server: s.server, torch: false, countsKernels: s.spec.countsKernels, train: timing(), infer: timing() }],
  );
}

/** Measures one space in interleaved rounds; drops an implementation whose process fails. */
async function measureSpace(space: SupernetSpace, options: BenchOptions, pythons: { python: string; version: string }[]): Promise<{ rows: BenchRow[]; load: string }> {
  let impls = await startImplementations(space, options, pythons);
  const random = new Random(1);
  const sample = (): Genotype => fromTokens(SPECS[space], decisions(SPECS[space]).map((d) => random.int(d.choices.length)));
  const call = async (impl: Implementation, body: object): Promise<Record<string, unknown> | undefined> => {
    try {
      return await impl.server.request({ ...body, threads: impl.threads });
    } catch (error) {
      options.log(`${space}: ${impl.label} failed, left out: ${(error as Error).message}`);
      impls = impls.filter((i) => i.server !== impl.server);
      return undefined;
    }
  };
  // Warm-up, untimed: first calls allocate, compile and pack.
  const warm = [sample(), sample()];
  for (const impl of [...impls]) for (const run of ['train', 'infer']) await call(impl, { run, genotypes: warm });
  const loadStart = loadLine();
  for (let round = 0; round < options.rounds; round++) {
    const trained = Array.from({ length: options.steps }, sample);
    const architectures = { train: trained, infer: [...trained, ...Array.from({ length: Math.max(0, SCORED_PER_ROUND - trained.length) }, sample)] };
    const flops = {
      train: EXAMPLES[space] * TRAINING_FLOPS_FACTOR * trained.reduce((s, g) => s + forwardFlops(space, g, true), 0),
      infer: EXAMPLES[space] * architectures.infer.reduce((s, g) => s + forwardFlops(space, g, false), 0),
    };
    options.log(`${space}: round ${round + 1}/${options.rounds}, load ${loadLine()}`);
    for (const run of ['train', 'infer'] as const) {
      const genotypes = architectures[run];
      const examples = genotypes.length * EXAMPLES[space];
      const order = impls.map((_, k) => impls[(k + round) % impls.length]!);
      for (const impl of order) {
        const answer = await call(impl, { run, genotypes });
        if (!answer) continue;
        const t = impl[run];
        t.seconds += Number(answer.seconds);
        t.flops += flops[run];
        t.examples += examples;
        t.rounds.push(examples / Number(answer.seconds));
      }
    }
  }
  const load = `${space}: ${loadStart} at the first round, ${loadLine()} after the last`;
  const kernelCalls: BenchRow[] = [];
  for (const impl of impls.filter((i) => i.countsKernels)) {
    const answer = await call(impl, { run: 'kernels', genotypes: [sample()] });
    if (answer) kernelCalls.push({ what: `${space} train step`, implementation: `${impl.label}: kernel calls`, value: Number(answer.kernelCalls), unit: 'calls' });
  }
  await Promise.all([...new Set(impls.map((i) => i.server))].map((server) => server.close()));
  const unit = space === 'rnn' ? 'tokens/s' : 'images/s';
  const rows: BenchRow[] = [];
  for (const [run, what] of [['train', `${space} train`], ['infer', `${space} inference`]] as const) {
    const measured = impls.filter((impl) => impl[run].rounds.length === options.rounds);
    const best = Math.max(...measured.filter((impl) => impl.torch).map((impl) => impl[run].examples / impl[run].seconds));
    for (const impl of measured) {
      const t = impl[run];
      const value = t.examples / t.seconds;
      rows.push({
        what,
        implementation: impl.label,
        value,
        unit,
        gflops: t.flops / t.seconds / 1e9,
        ...(Number.isFinite(best) && { ratio: value / best }),
        ...(impl.torch && value === best && { reference: true }),
        rounds: t.rounds.map((r) => Number(r.toPrecision(4))),
      });
    }
  }
  return { rows: [...rows, ...kernelCalls], load };
}

/** PyTorch's 2048² FP32 matmul per python and thread count: the practical peak the GFLOP/s compare with. */
function matmulPeaks(pythons: { python: string; version: string }[], threads: number[], log: (line: string) => void): BenchRow[] {
  return pythons.flatMap(({ python, version }) =>
    threads.flatMap((n) => {
      const result = runJson(python, [TORCH_SCRIPT, '--peak', '--threads', String(n)]);
      if (result instanceof Error) {
        log(`matmul peak of pytorch ${version} failed: ${result.message}`);
        return [];
      }
      const gflops = Number(result.gflops);
      return [{ what: 'FP32 matmul 2048², best of 3', implementation: `pytorch ${version}, ${n} thread${n > 1 ? 's' : ''}`, value: gflops, unit: 'GFLOP/s', gflops }];
    }),
  );
}

export async function benchSupernets(options: BenchOptions): Promise<BenchReport> {
  const pythons = torchPythons(options.torchPythons);
  if (!pythons.length)
    options.log('PyTorch: none given (--torch-python) or found (Debian: apt-get install python3-torch libopenblas0-pthread); no ratios');
  const rows: BenchRow[] = [];
  const loads: string[] = [];
  for (const space of options.spaces) {
    const measured = await measureSpace(space, options, pythons);
    rows.push(...measured.rows);
    loads.push(measured.load);
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
  rows.push(...matmulPeaks(pythons, options.torchThreads, options.log));
  const notes = [
    `Throughputs: ${options.rounds} interleaved rounds; in each, every implementation (one warm process each) runs the same ${options.steps} sampled architectures, one step each, in rotating order. Training batch ${CNN_BATCH} images or ${RNN.batch}×${RNN.bptt} tokens; inference the same, on ${SCORED_PER_ROUND} architectures per round (those trained and more, as many as the rnn preset's controller update scores together), scored as the search scores them (trial/model.ts evaluateAll: over workers, each batch whole on the first free worker; PyTorch one after another).`,
    'GFLOP/s: forward FLOPs of the architectures run, counted as 2 × the multiply-adds of convolutions, depthwise convolutions and dense layers (BN, pools, activations, softmax not counted); a training step counts 3× its forward pass, aux head included (bench/flops.ts).',
    'ratio: value ÷ the best PyTorch figure of the same measurement, the row marked "= reference".',
    `Load average (1 / 5 / 15 min): ${loads.join('; ')}.`,
  ];
  return { rows, notes };
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

/** The rows as a markdown table, then the notes. */
export function formatReport({ rows, notes }: BenchReport): string {
  const lines = ['| measurement | implementation | value | unit | GFLOP/s | ÷ best PyTorch |', '| :-- | :-- | --: | :-- | --: | --: |'];
  for (const r of rows) {
    const ratio = r.ratio === undefined ? '' : r.reference ? '1.00 = reference' : r.ratio.toFixed(2);
    lines.push(`| ${r.what} | ${r.implementation} | ${Number(r.value.toPrecision(4))} | ${r.unit} | ${r.gflops === undefined ? '' : r.gflops.toFixed(2)} | ${ratio} |`);
  }
  return [...lines, '', ...notes].join('\n');
}
