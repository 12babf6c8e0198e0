/*
 * `nni-enas search`: the embedded ENAS search (embedded/search.ts), configured by the same
 * config.yml NNI uses, sized by a preset, resumable after a stop or a crash.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { RUN_FILE } from '../common/results.js';
import { BACKENDS, type BackendInfo, type BackendName, type BackendOptions } from '../trial/backend.js';
import { PRESET_NAMES, type PresetName } from '../embedded/presets.js';
import { checkSchedule, readSettings, resolveSearchSettings, SETTINGS_FILE, type SearchSettings } from '../embedded/settings.js';
import { overridesFromFlags, SEARCH_FLAGS, SIZE_FLAGS, type SearchFlagValues } from '../embedded/search-flags.js';

export interface SearchArgs extends SearchFlagValues {
  config: string;
  preset: PresetName;
  out?: string;
  resume: boolean;
  policy?: 'enas' | 'random';
  seed?: number;
  backend?: BackendName;
  workers?: number;
}

/** Options `--resume` cannot change: the checkpoint was made with them. */
const FIXED_ON_RESUME = [
  'preset',
  'controller-steps',
  'num-aggregate',
  'seed',
  'subset',
  'channels',
  'layers',
  'hidden',
  'batch-size',
  'warmup-epochs',
  'reward-batches',
  'weight-sharing',
  'init-scale',
  'grad-clip',
  'policy',
] as const;

/** Run directory by default: runs/<experimentName>-<preset> under the working directory. */
const defaultRunDir = (settings: SearchSettings): string => resolve('runs', `${settings.experimentName}-${settings.preset}`);

/**
 * Initialises the TensorFlow.js backend. Fallback warnings are shown only when the run ends up
 * on the slow cpu backend: falling back from tfjs-node, which cannot be installed here, to wasm
 * is the normal case (TFJS-BACKENDS.md §1), and the chosen backend is printed anyway.
 */
export async function startBackend(forced: BackendName | undefined, print: (line: string) => void, options: BackendOptions = {}): Promise<BackendInfo> {
  const { setupBackend } = await import('../trial/backend.js');
  const warnings: string[] = [];
  const backend = await setupBackend(forced, (line) => warnings.push(line), options);
  if (backend.name === 'cpu') for (const line of warnings) print(line);
  return backend;
}

/**
 * Worker threads for a search unless --workers says otherwise: both cores. bench/parallel.ts
 * measured 1.46× the images/s of one thread on wasm at the reference micro size (1.07× at the
 * default preset's C=8); on tfjs-node two workers with one TensorFlow thread each beat one
 * process on TensorFlow's pool (trial/backend.ts BackendOptions); the RNN supernet at the
 * default preset's H=64 trains 1.25× (wasm) and 1.21× (tfjs-node) as many tokens per second.
 */
const defaultWorkers = (): number => Math.min(2, availableParallelism());

/** Adds the sizing options shared by search and retrain. */
export function addSizeOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .options(SIZE_FLAGS)
    .option('seed', { type: 'number', describe: 'seeds weights, data order and augmentation (search: the controller too)' })
    .option('backend', { choices: BACKENDS, describe: 'TensorFlow.js backend (default: the fastest that loads)' }) as Argv<T>;
}

export const searchCommand: CommandModule<object, SearchArgs> = {
  command: 'search',
  describe: 'run the ENAS search in this process (no NNI): child and controller phases per epoch, checkpoints, derive',
  builder: (y) =>
    addSizeOptions(
      y
        .option('config', { type: 'string', default: 'config.yml', describe: 'NNI experiment config: search space, tuner.classArgs, trialCommand' })
        .option('preset', { choices: PRESET_NAMES, default: 'default' as PresetName, describe: 'size: tiny (seconds), default (≈20 min on 2 idle cores), large (reference scale)' })
        .option('out', { type: 'string', describe: 'run directory (default runs/<experimentName>-<preset>)' })
        .option('resume', { type: 'boolean', default: false, describe: 'continue the search in the run directory from its checkpoint' })
        .options(SEARCH_FLAGS)
        .option('policy', { choices: ['enas', 'random'] as const, describe: "random: uniform sampling with weight sharing, the paper's random-search baseline (overrides classArgs policy)" })
        .option('workers', { type: 'number', describe: 'threads training the supernet data-parallel (default: 2 cores)' }),
    )
      .example('$0 search --config config.yml', 'micro search on Fashion-MNIST, about 20 minutes on 2 idle cores')
      .example('$0 search --config config.yml --resume', 'continue it after Ctrl-C or a crash')
      .example('$0 search --config config.yml --preset tiny --out /tmp/smoke', 'a smoke run of a few seconds'),
  handler: async (args) => {
    const [{ runSearch }, { catchInterrupts }, { ProgressLine, count }] = await Promise.all([
      import('../embedded/search.js'),
      import('../embedded/interrupt.js'),
      import('../embedded/progress.js'),
    ]);
    const progress = new ProgressLine();
    const print = (line: string) => progress.log(line, process.stdout);
    const overrides = { ...overridesFromFlags(args), preset: args.preset, policy: args.policy, seed: args.seed, backend: args.backend };
    let settings: SearchSettings;
    let runDir: string;
    if (args.resume) {
      const given = FIXED_ON_RESUME.filter((flag) => process.argv.some((word) => word === `--${flag}` || word.startsWith(`--${flag}=`)));
      if (given.length) throw new Error(`--resume continues a search with its own settings; --${given.join(', --')} cannot change them`);
      // The config is only needed to name the default run directory.
      runDir = resolve(args.out ?? defaultRunDir(resolveSearchSettings(args.config, overrides).settings));
      settings = readSettings(runDir);
      if (args.epochs !== undefined && args.epochs !== settings.schedule.epochs) {
        settings = { ...settings, schedule: { ...settings.schedule, epochs: args.epochs } };
        // Written by runSearch once the checkpoint has loaded, so a failed resume changes nothing.
        checkSchedule(settings.schedule);
      }
    } else {
      const resolved = resolveSearchSettings(args.config, overrides);
      settings = resolved.settings;
      runDir = resolve(args.out ?? defaultRunDir(settings));
      checkSchedule(settings.schedule);
      if (existsSync(join(runDir, SETTINGS_FILE)) || existsSync(join(runDir, RUN_FILE)))
        throw new Error(`${runDir} already holds a search: pass --resume to continue it, or --out for a new one`);
      for (const note of resolved.notes) print(`note: ${note}`);
    }
    const workers = args.workers ?? defaultWorkers();
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer, not ${args.workers}`);
    const backend = await startBackend(args.backend ?? settings.backend ?? undefined, print, { replicas: workers });
    print(`nni-enas search: ${settings.spec.space} space from ${settings.config}, backend ${backend.detail}`);
    const stop = catchInterrupts((line) => print(line));
    try {
      const outcome = await runSearch(runDir, settings, args.resume, { print, progress, stop }, workers);
      if (!outcome.finished) {
        print(`stopped after ${count(outcome.epochs, 'epoch')}; checkpoint written. Continue with:`);
        print(`  npx nni-enas search --config ${args.config} --out ${runDir} --resume`);
        process.exitCode = 130;
        return;
      }
      if (!outcome.derived) {
        print(`search finished (${count(outcome.epochs, 'epoch')}); derive was stopped. Derive with: npx nni-enas derive --run ${runDir}`);
        return;
      }
      print(`search finished: ${count(outcome.epochs, 'epoch')}; best architecture in ${outcome.derived.files.join(', ')}`);
      print(`retrain it with: npx nni-enas retrain --arch ${outcome.derived.files[0]}`);
    } finally {
      stop.dispose();
    }
  },
};
