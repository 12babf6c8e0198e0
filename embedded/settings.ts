/*
 * What an embedded search runs with, resolved once from config.yml and kept in the run directory
 * (settings.json), so `--resume` and `derive` rebuild exactly the same task, supernet and
 * controller. The config says what to search: the space (searchSpaceFile), the controller
 * (tuner.classArgs, through tuner/args.ts) and the trial (dataset and sizes, by parsing
 * trialCommand with trial/options.ts). The preset says how big; command-line flags override both.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { loadExperimentConfig, searchSpaceOfConfig } from '../common/nni-config.js';
import { writeFileAtomic } from '../common/files.js';
import { compileChecker } from '../common/validate.js';
import { specOfSearchSpace, type SpaceSpec } from '../search-spaces/spaces.js';
import type { BackendName } from '../trial/backend.js';
import { parseTrialArgs, trialArgsOfCommand, type TrialOptions } from '../trial/options.js';
import { controllerOptions, parseClassArgs } from '../tuner/args.js';
import type { ControllerOptions } from '../tuner/controller.js';
import { SEARCH_PRESETS, type PresetName, type SearchSchedule, type TrainableSpace, type TrialSizes } from './presets.js';

export const SETTINGS_FILE = 'settings.json';
const SETTINGS_FORMAT = 'nni-enas-embedded-search/1';

/** The tuner class config.yml must name: ours, whose controller the embedded runner runs in-process. */
const OUR_TUNER = 'nni_enas_tuner.EnasTuner';

export interface SearchSettings {
  format: typeof SETTINGS_FORMAT;
  /** The config.yml this came from (absolute), for the record. */
  config: string;
  experimentName: string;
  preset: PresetName;
  spec: SpaceSpec & { space: TrainableSpace };
  /** Trial flags (trial/options.ts), parsed again on every load: the trialCommand's sizes with preset and command line on top. */
  trialArgs: string[];
  controller: ControllerOptions;
  schedule: SearchSchedule;
  /** Forced TensorFlow.js backend, or null for the fastest that loads. */
  backend: BackendName | null;
}

/** What the command line may override. */
export interface SearchOverrides {
  preset: PresetName;
  epochs?: number;
  controllerSteps?: number;
  numAggregate?: number;
  deriveSamples?: number;
  warmupEpochs?: number;
  rewardBatches?: number;
  seed?: number;
  /** The controller's policy: enas, or random (the paper's random search with weight sharing, ENAS.md §4). */
  policy?: ControllerOptions['policy'];
  backend?: BackendName;
  trial: TrialSizes;
}

/** Flag names of the trial options a search uses (trial/options.ts); the NNI-only ones (--mode, --store, …) are dropped. */
const TRIAL_FLAGS: [keyof TrialOptions, string][] = [
  ['dataset', 'dataset'],
  ['dataDir', 'data-dir'],
  ['subset', 'subset'],
  ['validFraction', 'valid-fraction'],
  ['channels', 'channels'],
  ['layers', 'layers'],
  ['hidden', 'hidden'],
  ['bptt', 'bptt'],
  ['batchSize', 'batch-size'],
  ['evalBatchSize', 'eval-batch-size'],
  ['seed', 'seed'],
  ['weightSharing', 'weight-sharing'],
  ['initScale', 'init-scale'],
  ['gradClip', 'grad-clip'],
];

function toArgv(options: Partial<TrialOptions>): string[] {
  return TRIAL_FLAGS.flatMap(([key, flag]) => (options[key] === undefined ? [] : [`--${flag}`, String(options[key])]));
}

/** The trial options a search's task is built from (trial/task.ts createTask). */
export function trialOptionsOf(settings: SearchSettings): TrialOptions {
  return parseTrialArgs(settings.trialArgs);
}

const describeSizes = (sizes: Partial<TrialOptions>): string =>
  toArgv(sizes).join(' ').replace(/ --/g, ', --') || 'nothing';

/**
 * Resolves config.yml + preset + overrides into settings. Returns notes for the user: which
 * trialCommand or classArgs values the preset replaced. Every problem is one line naming the file.
 */
export function resolveSearchSettings(configPath: string, overrides: SearchOverrides): { settings: SearchSettings; notes: string[] } {
  if (!existsSync(configPath)) throw new Error(`${configPath}: no such file (pass --config with an NNI experiment config such as config.yml)`);
  const config = loadExperimentConfig(configPath);
  const tunerName = config.tuner.className ?? config.tuner.name ?? 'none';
  if (tunerName !== OUR_TUNER)
    throw new Error(`${configPath}: tuner ${tunerName} is not ${OUR_TUNER}; the embedded runner runs the ENAS controller and reads its settings from that tuner's classArgs`);
  const spaceFile = config.searchSpaceFile ?? `${configPath} (searchSpace)`;
  let spec: SpaceSpec;
  try {
    spec = specOfSearchSpace(searchSpaceOfConfig(config));
  } catch (error) {
    throw new Error(`${spaceFile}: ${(error as Error).message}`);
  }
  if (spec.space === 'nb201')
    throw new Error(`${spaceFile}: NAS-Bench-201 is a lookup table without a supernet; the embedded runner searches the macro, micro and rnn spaces`);
  const space = spec.space;
  let tuner: ReturnType<typeof parseClassArgs>;
  try {
    tuner = parseClassArgs(config.tuner.classArgs);
  } catch (error) {
    throw new Error(`${configPath}: tuner.${(error as Error).message}`);
  }
  let fromCommand: TrialOptions;
  let commandArgs: string[];
  try {
    commandArgs = trialArgsOfCommand(config.trialCommand);
    fromCommand = parseTrialArgs(commandArgs);
  } catch (error) {
    throw new Error(`${configPath}: trialCommand: ${(error as Error).message}`);
  }
  const explicit = new Set(commandArgs.filter((word) => word.startsWith('--')).map((word) => word.slice(2).split('=')[0]!));
  const notes: string[] = [];
  const preset = SEARCH_PRESETS[overrides.preset][space];
  const trial: Partial<TrialOptions> = {};
  for (const [key] of TRIAL_FLAGS) if (fromCommand[key] !== undefined) (trial as Record<string, unknown>)[key] = fromCommand[key];
  // NNI runs the trial in trialCodeDirectory, so that is what a relative --data-dir means.
  if (trial.dataDir !== undefined && !isAbsolute(trial.dataDir)) trial.dataDir = resolve(config.trialCodeDirectory, trial.dataDir);
  const flagOf = new Map(TRIAL_FLAGS);
  const replaced = Object.entries(preset.trial).filter(([key, value]) => {
    const given = explicit.has(flagOf.get(key as keyof TrialOptions)!);
    return given && fromCommand[key as keyof TrialOptions] !== value && overrides.trial[key as keyof TrialSizes] === undefined;
  });
  if (replaced.length)
    notes.push(`preset ${overrides.preset} replaces trialCommand ${describeSizes(Object.fromEntries(replaced.map(([k]) => [k, fromCommand[k as keyof TrialOptions]])))}`);
  Object.assign(trial, preset.trial, definedOnly(overrides.trial));
  const controller = controllerOptions(spec, tuner.controller);
  if (tuner.warmupTrials > 0)
    notes.push(`classArgs warmup_trials ${tuner.warmupTrials} applies under NNI; this search warms up for ${overrides.warmupEpochs ?? preset.schedule.warmupEpochs} epochs (--warmup-epochs)`);
  const numAggregate = overrides.numAggregate ?? preset.numAggregate;
  if (numAggregate !== undefined) {
    if (overrides.numAggregate === undefined && tuner.controller.numAggregate !== undefined && tuner.controller.numAggregate !== numAggregate)
      notes.push(`preset ${overrides.preset} replaces classArgs num_aggregate ${tuner.controller.numAggregate} with ${numAggregate}`);
    controller.numAggregate = numAggregate;
  }
  if (overrides.policy !== undefined) controller.policy = overrides.policy;
  if (overrides.seed !== undefined) {
    controller.seed = overrides.seed;
    trial.seed = overrides.seed;
  }
  const schedule: SearchSchedule = {
    ...preset.schedule,
    ...(overrides.epochs !== undefined && { epochs: overrides.epochs }),
    ...(overrides.controllerSteps !== undefined && { controllerSteps: overrides.controllerSteps }),
    ...(overrides.deriveSamples !== undefined && { deriveSamples: overrides.deriveSamples }),
    ...(overrides.warmupEpochs !== undefined && { warmupEpochs: overrides.warmupEpochs }),
    // --reward-batches 0: the reference, each reward on the next single batch.
    ...(overrides.rewardBatches !== undefined && { rewardBatches: overrides.rewardBatches === 0 ? null : overrides.rewardBatches }),
  };
  const trialArgs = toArgv(trial);
  parseTrialArgs(trialArgs);
  const settings: SearchSettings = {
    format: SETTINGS_FORMAT,
    config: resolve(configPath),
    experimentName: config.experimentName ?? `enas-${space}`,
    preset: overrides.preset,
    spec: spec as SearchSettings['spec'],
    trialArgs,
    controller,
    schedule,
    backend: overrides.backend ?? fromCommand.backend ?? null,
  };
  return { settings, notes };
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const checkSettings = compileChecker<SearchSettings>(
  {
    type: 'object',
    properties: {
      format: { const: SETTINGS_FORMAT },
      config: { type: 'string' },
      experimentName: { type: 'string' },
      preset: { enum: ['tiny', 'default', 'large'] },
      spec: { type: 'object', properties: { space: { enum: ['macro', 'micro', 'rnn'] } }, required: ['space'] },
      trialArgs: { type: 'array', items: { type: 'string' } },
      controller: { type: 'object' },
      schedule: {
        type: 'object',
        properties: {
          epochs: { type: 'integer', minimum: 1 },
          controllerSteps: { type: 'integer', minimum: 1 },
          reportSamples: { type: 'integer', minimum: 1 },
          deriveSamples: { type: 'integer', minimum: 1 },
          deriveValidBatches: { type: ['integer', 'null'], minimum: 1 },
          warmupEpochs: { type: 'integer', minimum: 0 },
          rewardBatches: { type: ['integer', 'null'], minimum: 1 },
        },
        required: ['epochs', 'controllerSteps', 'reportSamples', 'deriveSamples', 'deriveValidBatches', 'warmupEpochs', 'rewardBatches'],
        additionalProperties: false,
      },
      backend: { type: ['string', 'null'] },
    },
    required: ['format', 'config', 'experimentName', 'preset', 'spec', 'trialArgs', 'controller', 'schedule', 'backend'],
    additionalProperties: false,
  },
  SETTINGS_FILE,
);

/** Checks the numbers a schedule needs to be positive integers; one line per offending flag. */
export function checkSchedule(schedule: SearchSchedule): void {
  for (const [key, flag] of [
    ['epochs', '--epochs'],
    ['controllerSteps', '--controller-steps'],
    ['deriveSamples', '--derive-samples'],
  ] as const)
    if (!(Number.isInteger(schedule[key]) && schedule[key] >= 1)) throw new Error(`${flag} must be a positive integer, got ${schedule[key]}`);
  const { warmupEpochs, rewardBatches, epochs } = schedule;
  if (!(Number.isInteger(warmupEpochs) && warmupEpochs >= 0 && warmupEpochs <= epochs))
    throw new Error(`--warmup-epochs must be an integer from 0 to the search's ${epochs} epochs, got ${warmupEpochs}`);
  if (rewardBatches !== null && !(Number.isInteger(rewardBatches) && rewardBatches >= 1))
    throw new Error(`--reward-batches must be a positive integer, got ${rewardBatches}`);
}

export function writeSettings(dir: string, settings: SearchSettings): void {
  writeFileAtomic(join(dir, SETTINGS_FILE), `${JSON.stringify(settings, null, 2)}\n`);
}

/** The settings of the search in `dir`; one line if `dir` holds none. */
export function readSettings(dir: string): SearchSettings {
  const path = join(dir, SETTINGS_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no embedded search here (${SETTINGS_FILE} missing)`);
  try {
    return checkSettings(JSON.parse(readFileSync(path, 'utf8')));
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
}
