/*
 * The trial's command-line options (config.yml's trialCommand), typed and checked in one place.
 * trial/main.ts parses process.argv with them; the embedded runner parses a config's trialCommand
 * with the same definitions (`trialArgsOfCommand` + `parseTrialArgs`), so both run the same trial.
 * Sizes left unset default per space and mode in trial/task.ts.
 */
import yargs, { type Argv } from 'yargs';
import type { SpaceSpec } from '../search-spaces/spaces.js';
import type { BackendName } from './backend.js';

export const TRIAL_MODES = ['shared', 'scratch', 'table'] as const;
export type TrialMode = (typeof TRIAL_MODES)[number];

export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'ptb'] as const;
export type DatasetName = (typeof DATASETS)[number];

/**
 * backend.ts's BACKENDS, repeated so that parsing options does not load TensorFlow.js (a table
 * trial never needs it); test/trial-options.test.ts checks the two lists agree.
 */
export const BACKEND_CHOICES = ['tensorflow', 'wasm', 'cpu'] as const satisfies readonly BackendName[];

/**
 * Shared mode: S = 20 training steps of 64 images and V = 2 scoring batches of 100 at the default
 * micro sizes. Measured on the busy 2-core CPU: a trial takes 68–75 s, of which 3.0–3.4 s (4–5%)
 * is start-up, data, store load and commit, and NNI's own ≈1 s per trial adds 1.5%. A smaller S
 * lets those fixed costs grow; the reference trains one batch per architecture, which NNI cannot afford.
 */
export const DEFAULT_TRAIN_STEPS = 20;

/**
 * How the CNN supernets index their op weights (docs/embedded.md, "Weight sharing"):
 *   per-input  the reference (ENAS.md §1b): a micro node's op weights are indexed by the input
 *              node the op reads, a macro factorized reduction by the tensor it reduces;
 *   per-node   NNI's legacy ENAS example: one set per (node, input slot, op), one factorized
 *              reduction per macro pool point, whatever the input; each set trains on every step
 *              that samples its op there, several times as often as per-input.
 */
export const WEIGHT_SHARING = ['per-input', 'per-node'] as const;
export type WeightSharing = (typeof WEIGHT_SHARING)[number];
export const DEFAULT_VALID_BATCHES = 2;

export interface TrialOptions {
  mode: TrialMode;
  /** Unset: fashion-mnist for the image spaces, ptb for rnn. */
  dataset?: DatasetName;
  dataDir?: string;
  /** Images: this many per class of each split; text: this many tokens of each split. */
  subset?: number;
  validFraction: number;
  channels?: number;
  /** Micro: num_layers (num_layers + 2 cells). The macro depth comes from the search space. */
  layers?: number;
  hidden?: number;
  bptt: number;
  batchSize?: number;
  evalBatchSize?: number;
  trainSteps: number;
  validBatches: number;
  epochs: number;
  table?: string;
  store?: string;
  output?: string;
  backend?: BackendName;
  seed: number;
  /** CNN supernets: how op weights are shared (WEIGHT_SHARING). */
  weightSharing: WeightSharing;
  /** CNNs: multiplies the He-normal init's standard deviation (1: the reference). */
  initScale: number;
  /** CNN supernets: global-norm gradient clipping bound; unset: none (the reference's clipping is a no-op). */
  gradClip?: number;
  params?: string;
  paramsFile?: string;
  /** Trials NNI runs at once on this machine (config.yml's trialConcurrency); see trial/backend.ts BackendOptions. */
  trialConcurrency: number;
}

/** A command line that does not make a valid trial: one line saying which flag and why. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A yargs failure as one UsageError line (yargs writes some over several lines). */
export function usageFailure(message: string | undefined, error: Error | undefined): never {
  throw new UsageError((error?.message ?? message ?? 'invalid arguments').replace(/\s*\n\s*/g, ' '));
}

/** Adds the trial's options to a yargs instance (main.ts adds --help and examples on top). */
export function addTrialOptions<T>(y: Argv<T>): Argv<T> {
  return (
    y
      .option('mode', {
        choices: TRIAL_MODES,
        default: 'shared' as TrialMode,
        describe: 'shared: score on the supernet, then train it (ENAS); scratch: train this architecture alone; table: NAS-Bench-201 lookup',
      })
      .option('dataset', { choices: DATASETS, describe: 'default: fashion-mnist for macro/micro, ptb for rnn' })
      .option('data-dir', {
        type: 'string',
        describe: 'dataset directory (fashion-mnist: Debian dataset-fashion-mnist; cifar10: the binary batches; ptb: <prefix>.{train,valid,test}.txt)',
      })
      .option('subset', { type: 'number', describe: 'tiny data for smoke runs: images per class of each split, or tokens of each text split' })
      .option('valid-fraction', { type: 'number', default: 0.1, describe: 'images: validation split, the tail of the training set' })
      .option('channels', { type: 'number', describe: 'CNN channels of the first stage (default: micro 20, macro 36, the reference search sizes)' })
      .option('layers', { type: 'number', describe: 'micro: num_layers, the network has num_layers + 2 cells (default 6)' })
      .option('hidden', { type: 'number', describe: 'rnn: hidden and embedding size (default 200)' })
      .option('bptt', { type: 'number', default: 35, describe: 'rnn: tokens per training window' })
      .option('batch-size', { type: 'number', describe: 'training batch (default: 64 images, 32 text rows)' })
      .option('eval-batch-size', { type: 'number', describe: 'scoring/validation batch (default: 100 images, text: the training batch)' })
      .option('train-steps', { type: 'number', default: DEFAULT_TRAIN_STEPS, describe: 'shared: training minibatches per trial (S)' })
      .option('valid-batches', { type: 'number', default: DEFAULT_VALID_BATCHES, describe: 'shared: validation minibatches the reward is measured on (V)' })
      .option('epochs', { type: 'number', default: 10, describe: 'scratch: training epochs' })
      .option('table', { type: 'string', describe: 'table: NAS-Bench-201 CSV (default ../shared/data/nasbench201/nb201-cifar10valid.csv)' })
      .option('store', { type: 'string', describe: 'shared: weight store directory (default runs/nni-<NNI_EXP_ID>/store, standalone runs/standalone/store)' })
      .option('output', { type: 'string', describe: 'where architecture.json/.svg go (default NNI_OUTPUT_DIR, standalone runs/standalone)' })
      .option('backend', { choices: BACKEND_CHOICES, describe: 'TensorFlow.js backend (default: the fastest that loads)' })
      .option('seed', { type: 'number', default: 0, describe: 'weight init, data order and augmentation; keep it fixed within an experiment' })
      .option('weight-sharing', {
        choices: WEIGHT_SHARING,
        default: 'per-input' as WeightSharing,
        describe: 'CNN supernets: per-input = the reference (op weights indexed by the input node); per-node = one set per node, slot and op',
      })
      .option('init-scale', { type: 'number', default: 1, describe: "CNNs: scale of the He-normal init's standard deviation (1 = the reference)" })
      .option('grad-clip', { type: 'number', describe: "CNN supernets: clip the gradient's global norm to this bound (default none, or 0: the reference's clipping is a no-op)" })
      .option('trial-concurrency', {
        type: 'number',
        default: 1,
        describe: "trials running at once on this machine (config.yml's trialConcurrency): with more than one, tfjs-node runs each trial's ops in one thread",
      })
      .option('params', { type: 'string', describe: 'standalone (no NNI): the parameter dict as JSON' })
      .option('params-file', { type: 'string', describe: "standalone (no NNI): a file holding the parameter dict, or a trial's architecture.json" })
      // A flag given twice takes its last value, so a copied trialCommand can be overridden by appending.
      .parserConfiguration({ 'duplicate-arguments-array': false }) as unknown as Argv<T>
  );
}

type Raw = Record<string, unknown>;

function count(raw: Raw, flag: string, minimum = 1): number | undefined {
  const value = raw[flag];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum)
    throw new UsageError(`--${flag} must be an integer >= ${minimum}, got ${String(value)}`);
  return value;
}

function text(raw: Raw, flag: string): string | undefined {
  const value = raw[flag];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag} needs a value`);
  return value;
}

function positive(raw: Raw, flag: string): number {
  const value = raw[flag];
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new UsageError(`--${flag} must be a positive number, got ${String(value)}`);
  return value;
}

/** Checks parsed yargs values and gives them their types. */
export function toTrialOptions(raw: Raw): TrialOptions {
  const validFraction = raw['valid-fraction'] as number;
  if (!(validFraction > 0 && validFraction < 1)) throw new UsageError(`--valid-fraction must be in (0, 1), got ${validFraction}`);
  if (raw.params !== undefined && raw['params-file'] !== undefined) throw new UsageError('give --params or --params-file, not both');
  return {
    mode: raw.mode as TrialMode,
    dataset: raw.dataset as DatasetName | undefined,
    dataDir: text(raw, 'data-dir'),
    subset: count(raw, 'subset'),
    validFraction,
    channels: count(raw, 'channels'),
    layers: count(raw, 'layers', 0),
    hidden: count(raw, 'hidden'),
    bptt: count(raw, 'bptt')!,
    batchSize: count(raw, 'batch-size'),
    evalBatchSize: count(raw, 'eval-batch-size'),
    trainSteps: count(raw, 'train-steps')!,
    validBatches: count(raw, 'valid-batches')!,
    epochs: count(raw, 'epochs')!,
    table: text(raw, 'table'),
    store: text(raw, 'store'),
    output: text(raw, 'output'),
    backend: raw.backend as BackendName | undefined,
    seed: count(raw, 'seed', 0)!,
    weightSharing: raw['weight-sharing'] as WeightSharing,
    initScale: positive(raw, 'init-scale'),
    // 0 turns clipping off, so a preset's bound can be overridden back to the reference's none.
    gradClip: raw['grad-clip'] === undefined || raw['grad-clip'] === 0 ? undefined : positive(raw, 'grad-clip'),
    params: text(raw, 'params'),
    paramsFile: text(raw, 'params-file'),
    trialConcurrency: count(raw, 'trial-concurrency')!,
  };
}

/** Parses the arguments after `node dist/trial/main.js`; throws a UsageError instead of exiting. */
export function parseTrialArgs(argv: readonly string[]): TrialOptions {
  const parser = addTrialOptions(yargs())
    .strict()
    .help(false)
    .version(false)
    .exitProcess(false)
    .fail(usageFailure);
  const raw = parser.parseSync([...argv]) as Raw;
  const positional = (raw._ as unknown[]).map(String);
  if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  return toTrialOptions(raw);
}

/**
 * Checks that the options fit an architecture of `spec` (mode, dataset, size flags) and returns
 * the dataset to use, so a misfit is refused before anything is loaded or written.
 */
export function checkOptionsForSpace(options: TrialOptions, spec: SpaceSpec): DatasetName {
  const table = spec.space === 'nb201';
  if (table !== (options.mode === 'table'))
    throw new UsageError(
      table
        ? `NAS-Bench-201 architectures are only looked up: use --mode table, not ${options.mode}`
        : `--mode table needs NAS-Bench-201 parameters, got a ${spec.space} architecture`,
    );
  const misplaced: [keyof TrialOptions, string, boolean][] = [
    ['channels', '--channels is for the CNN spaces (macro, micro)', spec.space === 'rnn'],
    ['layers', `--layers is micro's num_layers; the ${spec.space} depth comes from the search space`, spec.space !== 'micro'],
    ['hidden', '--hidden is for the rnn space', spec.space !== 'rnn'],
  ];
  if (!table) for (const [key, message, wrong] of misplaced) if (wrong && options[key] !== undefined) throw new UsageError(message);
  const dataset = options.dataset ?? (spec.space === 'rnn' ? 'ptb' : 'fashion-mnist');
  if (!table && (dataset === 'ptb') !== (spec.space === 'rnn'))
    throw new UsageError(
      dataset === 'ptb'
        ? `--dataset ptb is text; the ${spec.space} space needs an image dataset (fashion-mnist, mnist, cifar10)`
        : `--dataset ${dataset} is images; the rnn space needs --dataset ptb`,
    );
  return dataset;
}

/**
 * Splits a command line into words as /bin/bash would, for plain words, backslash escapes and
 * '…' / "…" quoting; anything that needs a shell to mean something (pipes, $, redirection) is refused.
 */
export function shellWords(command: string): string[] {
  const refuse = (c: string) =>
    new UsageError(`trialCommand ${JSON.stringify(command)} uses shell syntax (${c}); only "node <…>/trial/main.js <flags>" is understood`);
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'" || c === '"') {
      const end = command.indexOf(c, i + 1);
      if (end < 0) throw new UsageError(`unterminated ${c} quote in trialCommand ${JSON.stringify(command)}`);
      const quoted = command.slice(i + 1, end);
      if (c === '"' && /[$`\\]/.test(quoted)) throw refuse(quoted.match(/[$`\\]/)![0]);
      word = (word ?? '') + quoted;
      i = end;
    } else if (c === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i];
    } else if ('|&;<>()$`*?[{~#'.includes(c)) {
      throw refuse(c);
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The trial flags of a config's trialCommand (`node [node flags] <…>/trial/main.js <flags>`). */
export function trialArgsOfCommand(command: string): string[] {
  const words = shellWords(command);
  const entry = words.findIndex((w) => /(^|\/)trial\/main\.js$/.test(w));
  if (entry < 0 || !/(^|\/)node$/.test(words[0] ?? ''))
    throw new UsageError(`trialCommand ${JSON.stringify(command)} does not run the nni-enas trial (node <…>/trial/main.js …)`);
  return words.slice(entry + 1);
}
