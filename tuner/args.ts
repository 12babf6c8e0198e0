/*
 * The tuner's classArgs (config.yml `tuner.classArgs`, snake_case as NNI users write them):
 * their schema, their mapping onto the controller's ControllerOptions (tuner/controller.ts) and
 * the reward settings the protocol loop (tuner/tuner.ts) applies to trial metrics. Every key is
 * optional; controller defaults depend on the search space, so they are merged in at IN.
 */
import { compileChecker, ValidationError } from '../common/validate.js';
import type { SpaceSpec } from '../search-spaces/spaces.js';
import { defaultControllerOptions, type ControllerOptions } from './controller.js';

/** How a trial's final metric becomes the controller's reward. */
export interface RewardOptions {
  /** Key of a dict metric; "default" also accepts a plain number. */
  metric: string;
  /** "inverse": reward = constant / metric, for minimised metrics (the reference's 80/ppl). */
  transform: 'identity' | 'inverse';
  constant: number;
}

/** The reward when classArgs say nothing: the trial's "default" metric as is. */
export const DEFAULT_REWARD: RewardOptions = { metric: 'default', transform: 'identity', constant: 80 };

export interface TunerArgs {
  controller: Partial<ControllerOptions>;
  reward: RewardOptions;
  /**
   * Under NNI: parameter ids below this get uniformly random architectures and their rewards do
   * not update the controller (0: the reference). The embedded search warms up by epochs instead.
   */
  warmupTrials: number;
}

/** classArgs key → ControllerOptions key. */
const CONTROLLER_KEYS = {
  policy: 'policy',
  seed: 'seed',
  lstm_size: 'lstmSize',
  learning_rate: 'learningRate',
  temperature: 'temperature',
  tanh_constant: 'tanhConstant',
  op_tanh_reduce: 'opTanhReduce',
  entropy_weight: 'entropyWeight',
  baseline_decay: 'baselineDecay',
  num_aggregate: 'numAggregate',
  skip_target: 'skipTarget',
  skip_weight: 'skipWeight',
  normal_op_bias: 'normalOpBias',
  normalize_advantage: 'normalizeAdvantage',
} as const satisfies Record<string, keyof ControllerOptions>;

const positive = { type: 'number', exclusiveMinimum: 0 };
const nonNegative = { type: 'number', minimum: 0 };

const PROPERTIES: Record<string, object> = {
  policy: { enum: ['enas', 'random'] },
  seed: { type: 'integer', minimum: 0, maximum: 0xffffffff },
  lstm_size: { type: 'integer', minimum: 1 },
  learning_rate: positive,
  temperature: { type: ['number', 'null'], exclusiveMinimum: 0 },
  tanh_constant: positive,
  op_tanh_reduce: positive,
  entropy_weight: nonNegative,
  baseline_decay: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
  num_aggregate: { type: 'integer', minimum: 1 },
  skip_target: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
  skip_weight: nonNegative,
  normal_op_bias: nonNegative,
  normalize_advantage: { type: 'boolean' },
  reward_metric: { type: 'string', minLength: 1 },
  reward_transform: { enum: ['identity', 'inverse'] },
  reward_constant: positive,
  warmup_trials: { type: 'integer', minimum: 0 },
};

type RawArgs = Record<string, unknown>;

const checkArgs = compileChecker<RawArgs>(
  { type: 'object', properties: PROPERTIES, additionalProperties: false },
  'classArgs',
);

/** PyYAML (which nnictl uses) reads `1e-3` as a string; say so instead of just "must be number". */
const YAML_NUMBER_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$/;

/**
 * Checks classArgs (null or absent means none). Throws a ValidationError naming each wrong key:
 * unknown keys, wrong types, values out of range.
 */
export function parseClassArgs(raw: unknown): TunerArgs {
  let args: RawArgs;
  try {
    args = checkArgs(raw ?? {});
  } catch (error) {
    if (!(error instanceof ValidationError) || typeof raw !== 'object') throw error;
    const hints = Object.entries(raw as RawArgs)
      .filter(([, v]) => typeof v === 'string' && YAML_NUMBER_TEXT.test(v))
      .map(([k, v]) => `key "${k}": YAML read ${v} as text, write it with a decimal point (e.g. ${String(v).replace(/^([-+]?\d+)([eE])/, '$1.0$2')})`);
    throw hints.length ? new ValidationError(error.what, [...error.problems, ...hints]) : error;
  }
  const controller: Partial<Record<keyof ControllerOptions, unknown>> = {};
  for (const [key, option] of Object.entries(CONTROLLER_KEYS)) if (key in args) controller[option] = args[key];
  return {
    controller: controller as Partial<ControllerOptions>,
    reward: {
      metric: (args.reward_metric as string | undefined) ?? DEFAULT_REWARD.metric,
      transform: (args.reward_transform as RewardOptions['transform'] | undefined) ?? DEFAULT_REWARD.transform,
      constant: (args.reward_constant as number | undefined) ?? DEFAULT_REWARD.constant,
    },
    warmupTrials: (args.warmup_trials as number | undefined) ?? 0,
  };
}

/** The controller's defaults for this space with the user's classArgs on top. */
export function controllerOptions(spec: SpaceSpec, overrides: Partial<ControllerOptions>): ControllerOptions {
  return { ...defaultControllerOptions(spec), ...overrides };
}
