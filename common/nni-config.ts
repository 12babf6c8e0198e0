/*
 * Reads an NNI v2 experiment config (config.yml) the way nnictl does for the fields we use
 * (NNI-PROTOCOL.md c): camelCase keys, relative paths resolved against the file's directory,
 * exactly one of searchSpaceFile / searchSpace. The embedded runner reads the same file, and the
 * test suite's fake manager turns it into the canonical exp_params NNI hands the tuner.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { homedir } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { compileChecker } from './validate.js';

export interface TunerConfig {
  name?: string;
  codeDirectory?: string;
  className?: string;
  classArgs?: Record<string, unknown>;
}

export interface ExperimentConfig {
  experimentName?: string;
  searchSpaceFile?: string;
  searchSpace?: unknown;
  trialCommand: string;
  trialCodeDirectory: string;
  trialConcurrency: number;
  maxTrialNumber?: number;
  maxExperimentDuration?: string | number;
  maxTrialDuration?: string | number;
  experimentWorkingDirectory?: string;
  logLevel?: string;
  tuner: TunerConfig;
  trainingService: { platform: string } & Record<string, unknown>;
  [field: string]: unknown;
}

const duration = { oneOf: [{ type: 'string', pattern: '^\\d+(\\.\\d+)?\\s*(s|m|h|d)$' }, { type: 'number', minimum: 0 }] };

const checkConfig = compileChecker<ExperimentConfig>(
  {
    type: 'object',
    properties: {
      experimentName: { type: 'string' },
      searchSpaceFile: { type: 'string' },
      searchSpace: { type: 'object' },
      trialCommand: { type: 'string', minLength: 1 },
      trialCodeDirectory: { type: 'string' },
      trialConcurrency: { type: 'integer', minimum: 1 },
      maxTrialNumber: { type: 'integer', minimum: 1 },
      maxExperimentDuration: duration,
      maxTrialDuration: duration,
      experimentWorkingDirectory: { type: 'string' },
      logLevel: { enum: ['trace', 'debug', 'info', 'warning', 'error', 'fatal'] },
      tuner: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          codeDirectory: { type: 'string' },
          className: { type: 'string', pattern: '\\.' },
          classArgs: { type: 'object' },
        },
        additionalProperties: false,
      },
      trainingService: {
        type: 'object',
        properties: { platform: { type: 'string' } },
        required: ['platform'],
      },
    },
    required: ['trialCommand', 'trialConcurrency', 'tuner', 'trainingService'],
  },
  'experiment config',
);

function resolvePath(base: string, path: string): string {
  if (path.startsWith('~')) return resolve(homedir(), path.slice(1).replace(/^\//, ''));
  return isAbsolute(path) ? path : resolve(base, path);
}

/** Loads config.yml; paths come back absolute; errors name the file and the field. */
export function loadExperimentConfig(path: string): ExperimentConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  }
  let config: ExperimentConfig;
  try {
    config = checkConfig(raw);
  } catch (error) {
    throw new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if ((config.searchSpaceFile === undefined) === (config.searchSpace === undefined))
    throw new Error(`${path}: give exactly one of searchSpaceFile and searchSpace`);
  const base = dirname(resolve(path));
  const tuner = { ...config.tuner };
  if (tuner.codeDirectory !== undefined) tuner.codeDirectory = resolvePath(base, tuner.codeDirectory);
  return {
    ...config,
    ...(config.searchSpaceFile !== undefined && { searchSpaceFile: resolvePath(base, config.searchSpaceFile) }),
    trialCodeDirectory: resolvePath(base, config.trialCodeDirectory ?? '.'),
    experimentWorkingDirectory: resolvePath(base, config.experimentWorkingDirectory ?? '~/nni-experiments'),
    tuner,
  };
}

/** The search space a config names, parsed (JSON; NNI also accepts YAML files, and so do we). */
export function searchSpaceOfConfig(config: ExperimentConfig): unknown {
  if (config.searchSpace !== undefined) return config.searchSpace;
  const file = config.searchSpaceFile!;
  try {
    return parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  }
}

/**
 * The canonical config NNI's Python side POSTs and base64-encodes into `--exp_params`
 * (NNI-PROTOCOL.md a.1): absolute paths, trial fields copied into trainingService, no searchSpace.
 */
export function canonicalExpParams(config: ExperimentConfig): Record<string, unknown> {
  const { searchSpace: _inline, ...rest } = config;
  return {
    ...rest,
    useAnnotation: false,
    debug: false,
    logLevel: config.logLevel ?? 'info',
    trainingService: {
      ...config.trainingService,
      trialCommand: config.trialCommand,
      trialCodeDirectory: config.trialCodeDirectory,
      debug: false,
    },
  };
}
