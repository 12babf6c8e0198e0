/*
 * The ENAS controller as a SearchStrategy (tuner/strategy.ts): an LSTM policy over a space's
 * tokens (ENAS.md §2; the per-space walks are in tuner/controller-{macro,micro,rnn,nb201}.ts),
 * trained by REINFORCE with an EMA baseline and Adam. `policy: 'random'` is the paper's
 * random-search ablation (ENAS.md §4): uniform tokens through the same walk, and no updates.
 *
 * NNI delivers rewards asynchronously, and foreign architectures (web-UI trials) can arrive too.
 * So nothing is kept from `propose`: the update re-runs the walk with the observed tokens forced
 * (teacher forcing) and takes log π and the entropy under the current θ. If an update happened
 * between a proposal and its reward, the estimate is slightly off-policy: the tokens were sampled
 * under the previous θ. The reference samples and scores in one graph, so there it is on-policy.
 */
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../common/random.js';
import { compileChecker, ValidationError } from '../common/validate.js';
import { decisions, fromTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import type { BackendName } from '../trial/backend.js';
import type { SearchStrategy } from './strategy.js';
import '../common/tf-gradients.js';
import { ControllerNet, SamplingRollout, TeacherRollout, type SpacePolicy } from './controller-network.js';
import { macroPolicy } from './controller-macro.js';
import { microPolicy } from './controller-micro.js';
import { rnnPolicy } from './controller-rnn.js';
import { nb201Policy } from './controller-nb201.js';

export interface ControllerOptions {
  /** 'enas': the trained controller; 'random': uniform sampling, never updated. */
  policy: 'enas' | 'random';
  /** Seeds the parameter initialisation and the sampling stream. */
  seed: number;
  lstmSize: number;
  /** Adam learning rate (constant; β1 = 0, ε = 1e-3 as in the reference). */
  learningRate: number;
  /** Logits are divided by it before the tanh; null for none. */
  temperature: number | null;
  /** c in c·tanh(logits). */
  tanhConstant: number;
  /** Micro only: op logits use c/opTanhReduce. */
  opTanhReduce: number;
  /** Weight of the entropy bonus added to the reward. */
  entropyWeight: number;
  /** b ← b − (1 − decay)(b − R). */
  baselineDecay: number;
  /** Rewards per update; their gradients are averaged. */
  numAggregate: number;
  /** Macro only: the target skip probability of the skip KL. */
  skipTarget: number;
  /** Macro only: weight of the skip KL in the loss; 0 turns it off. */
  skipWeight: number;
  /** Micro only: the constant added to the normal cell's op logits, + for sep-convs, − otherwise. */
  normalOpBias: number;
  /**
   * Not in the reference (a deliberate deviation, off by default): the baseline starts at the first
   * reward instead of 0, and each advantage R − b is divided by a running standard deviation of the
   * advantages (EMA with the baseline's decay, bias-corrected). The reference's Adam has ε = 1e-3,
   * so with rewards that differ by ~0.01 (shared-weight accuracies early in a search, 80/ppl) most
   * gradients fall below ε and the step is ≈ lr·g/ε: a search of ~100 updates hardly moves θ, and
   * the first ~100 rewards, against a baseline still climbing from 0, all count as good. With
   * normalised advantages the step is ≈ lr whatever the reward's scale.
   */
  normalizeAdvantage: boolean;
}

/**
 * The reference scripts' values (ENAS.md §1 hyperparameter tables and §2): macro_search,
 * micro_search and ptb_search of E; nb201, which the reference lacks, is tuned below. Options that
 * a space does not use are set to neutral values.
 */
export function defaultControllerOptions(spec: SpaceSpec): ControllerOptions {
  const common = {
    policy: 'enas',
    seed: 0,
    lstmSize: 64,
    temperature: null,
    opTanhReduce: 1,
    baselineDecay: 0.99,
    skipTarget: 0.4,
    skipWeight: 0,
    normalOpBias: 0,
    normalizeAdvantage: false,
  } as const;
  switch (spec.space) {
    case 'macro':
      return { ...common, learningRate: 1e-3, tanhConstant: 1.5, entropyWeight: 1e-4, numAggregate: 20, skipWeight: 0.8 };
    case 'micro':
      return {
        ...common,
        learningRate: 3.5e-3,
        tanhConstant: 1.1,
        opTanhReduce: 2.5,
        entropyWeight: 1e-4,
        numAggregate: 10,
        normalOpBias: 0.25,
      };
    case 'rnn':
      return {
        ...common,
        lstmSize: 100,
        learningRate: 1e-3,
        temperature: 5,
        tanhConstant: 2.5,
        entropyWeight: 1e-3,
        numAggregate: 10,
      };
    case 'nb201':
      // Not in the reference; tuned with bench/nb201-controller.ts on seeds 1000–1019 (reported seeds are 0–19).
      // Rewards there are validation accuracies whose good cells differ by ~0.01, so most gradients fall
      // below Adam's ε = 1e-3 and the step is about lr·g/ε. Hence lr 0.1, 100× macro's. A 200-query
      // budget at 5 rewards per update gives 40 updates. tanh 2.5 lets an edge's best op reach p ≈ 0.97.
      // Baseline decay 0.9 follows the reward trend within tens of queries.
      return { ...common, learningRate: 0.1, tanhConstant: 2.5, entropyWeight: 1e-3, baselineDecay: 0.9, numAggregate: 5 };
  }
}

/** Backend for the tuner process: measured faster for this small, per-op-bound network (bench/controller-latency.ts). */
export const CONTROLLER_BACKEND: BackendName = 'wasm';

export function createController(spec: SpaceSpec, options: ControllerOptions): SearchStrategy {
  return new EnasController(spec, options);
}

/** TF's Adam β2; β1 = 0 makes the first moment the gradient itself, so it has no slot (ENAS.md §2). */
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-3;
const INIT_RANGE = 0.1;
const STATE_FORMAT = 'nni-enas-controller/1';

/** A float32 tensor as JSON: its shape and its little-endian bytes in base64 (exact and compact). */
interface TensorData {
  shape: number[];
  float32: string;
}
type TensorSet = Record<string, TensorData>;

/** A reward waiting for the update that will use it. */
interface PendingReward {
  tokens: number[];
  reward: number;
}

/** What `save()` returns: JSON-able, and exactly what `load()` accepts. */
export interface ControllerState {
  format: typeof STATE_FORMAT;
  space: SpaceSpec['space'];
  policy: ControllerOptions['policy'];
  params: TensorSet;
  adamSecondMoment: TensorSet;
  /** The rewards of the update in progress; their gradient is the pending accumulated gradient. */
  pending: PendingReward[];
  updates: number;
  baseline: number;
  /** The running mean square of the advantages (normalizeAdvantage); absent in states saved before it existed. */
  advantageVariance?: number;
  rng: number[];
}

const tensorSetSchema = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    properties: {
      shape: { type: 'array', items: { type: 'integer', minimum: 1 } },
      float32: { type: 'string' },
    },
    required: ['shape', 'float32'],
    additionalProperties: false,
  },
};

const checkState = compileChecker<ControllerState>(
  {
    type: 'object',
    properties: {
      format: { const: STATE_FORMAT },
      space: { enum: ['macro', 'micro', 'rnn', 'nb201'] },
      policy: { enum: ['enas', 'random'] },
      params: tensorSetSchema,
      adamSecondMoment: tensorSetSchema,
      pending: {
        type: 'array',
        items: {
          type: 'object',
          properties: { tokens: { type: 'array', items: { type: 'integer' } }, reward: { type: 'number' } },
          required: ['tokens', 'reward'],
          additionalProperties: false,
        },
      },
      updates: { type: 'integer', minimum: 0 },
      baseline: { type: 'number' },
      advantageVariance: { type: 'number', minimum: 0 },
      rng: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 4294967295 }, minItems: 4, maxItems: 4 },
    },
    required: ['format', 'space', 'policy', 'params', 'adamSecondMoment', 'pending', 'updates', 'baseline', 'rng'],
    additionalProperties: false,
  },
  'controller state',
);

function policyFor(spec: SpaceSpec, options: ControllerOptions): SpacePolicy {
  switch (spec.space) {
    case 'macro':
      return macroPolicy(spec, options);
    case 'micro':
      return microPolicy(spec, options);
    case 'rnn':
      return rnnPolicy(spec, options);
    case 'nb201':
      return nb201Policy(spec, options);
  }
}

function checkOptions(options: ControllerOptions): void {
  const problems: string[] = [];
  const positive = (key: keyof ControllerOptions, value: number) => {
    if (!(Number.isFinite(value) && value > 0)) problems.push(`${key} must be a positive number, got ${value}`);
  };
  if (options.policy !== 'enas' && options.policy !== 'random') problems.push(`policy must be "enas" or "random"`);
  if (typeof options.normalizeAdvantage !== 'boolean') problems.push(`normalizeAdvantage must be true or false, got ${options.normalizeAdvantage}`);
  if (!Number.isInteger(options.seed)) problems.push(`seed must be an integer, got ${options.seed}`);
  for (const key of ['lstmSize', 'numAggregate'] as const)
    if (!(Number.isInteger(options[key]) && options[key] >= 1)) problems.push(`${key} must be a positive integer, got ${options[key]}`);
  positive('learningRate', options.learningRate);
  positive('tanhConstant', options.tanhConstant);
  positive('opTanhReduce', options.opTanhReduce);
  if (options.temperature !== null) positive('temperature', options.temperature);
  for (const key of ['entropyWeight', 'skipWeight', 'normalOpBias'] as const)
    if (!(Number.isFinite(options[key]) && options[key] >= 0)) problems.push(`${key} must be a number ≥ 0, got ${options[key]}`);
  for (const key of ['baselineDecay', 'skipTarget'] as const)
    if (!(options[key] >= 0 && options[key] < 1)) problems.push(`${key} must be in [0, 1), got ${options[key]}`);
  if (options.skipTarget === 0 && options.skipWeight > 0) problems.push('skipTarget must be > 0 when skipWeight > 0');
  if (problems.length) throw new ValidationError('controller options', problems);
}

function encode(variable: tf.Variable): TensorData {
  const values = variable.dataSync() as Float32Array;
  return { shape: [...variable.shape], float32: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64') };
}

export class EnasController implements SearchStrategy {
  private readonly policy: SpacePolicy;
  private readonly net: ControllerNet;
  private readonly params = new Map<string, tf.Variable>();
  private readonly adamSecondMoment = new Map<string, tf.Variable>();
  private readonly tokenCount: number;
  private rng: Random;
  private baseline = 0;
  private advantageVariance = 0;
  private pending: PendingReward[] = [];
  private updates = 0;

  constructor(
    readonly spec: SpaceSpec,
    readonly options: ControllerOptions,
  ) {
    checkOptions(options);
    this.tokenCount = decisions(spec).length;
    this.policy = policyFor(spec, options);
    this.rng = new Random(options.seed);
    // Variables outlive tf.tidy; only the initial-value tensors are freed.
    tf.tidy(() => {
      for (const [name, { shape, init }] of Object.entries(this.policy.params)) {
        const values = init ?? Float32Array.from({ length: shape[0] * shape[1] }, () => (2 * this.rng.next() - 1) * INIT_RANGE);
        this.params.set(name, tf.variable(tf.tensor2d(values, shape), true));
        this.adamSecondMoment.set(name, tf.variable(tf.zeros(shape), false));
      }
    });
    this.net = new ControllerNet(this.params, options, options.lstmSize);
  }

  propose(): number[] {
    const rollout = new SamplingRollout(this.tokenCount, this.rng, this.options.policy === 'random');
    tf.tidy(() => this.policy.walk(this.net, rollout));
    return rollout.tokens;
  }

  /**
   * Queues the reward; the numAggregate-th one triggers the update. θ only changes at updates, so
   * computing every queued reward's gradient then, in one batched walk, gives exactly what computing
   * each at its `observe` would, at the cost of about one.
   */
  observe(tokens: readonly number[], reward: number): boolean {
    fromTokens(this.spec, tokens);
    if (!Number.isFinite(reward)) throw new Error(`reward must be a finite number, got ${reward}`);
    if (this.options.policy === 'random') return false;
    this.pending.push({ tokens: [...tokens], reward });
    if (this.pending.length < this.options.numAggregate) return false;
    this.update();
    return true;
  }

  /** log π(tokens) under the current θ (a diagnostic; sampling and training never need it). */
  logProbability(tokens: readonly number[]): number {
    fromTokens(this.spec, tokens);
    return tf.tidy(() => {
      const rollout = new TeacherRollout([tokens], this.policy.entropy);
      this.policy.walk(this.net, rollout);
      return -rollout.crossEntropy().dataSync()[0]!;
    });
  }

  /**
   * REINFORCE on the pending rewards, then one Adam step (ENAS.md §2 Objective): per reward, in
   * arrival order, R = reward + w·H (H a number, no gradient), b ← b − (1 − decay)(b − R) before the
   * advantage, loss (Σ_t −log π(a_t))·(R − b) [+ skipWeight·KL, macro]; the gradient is the mean over
   * the numAggregate rewards, as the reference's SyncReplicasOptimizer averages them.
   * normalizeAdvantage changes the advantage as its option says.
   */
  private update(): void {
    const batch = this.pending;
    const { entropyWeight, baselineDecay, skipWeight, normalizeAdvantage, numAggregate } = this.options;
    const { value, grads } = tf.variableGrads(() => {
      const rollout = new TeacherRollout(
        batch.map((sample) => sample.tokens),
        this.policy.entropy,
      );
      this.policy.walk(this.net, rollout);
      const entropies = rollout.entropy().dataSync();
      const advantages = batch.map(({ reward }, k) => {
        const rewardWithBonus = reward + entropyWeight * entropies[k]!;
        const seen = this.updates * numAggregate + k + 1;
        if (normalizeAdvantage && seen === 1) this.baseline = rewardWithBonus;
        this.baseline -= (1 - baselineDecay) * (this.baseline - rewardWithBonus);
        let advantage = rewardWithBonus - this.baseline;
        if (!normalizeAdvantage) return advantage;
        // Equal rewards leave an advantage of rounding error, which normalising would blow up to ±1.
        if (Math.abs(advantage) <= 1e-9 * (Math.abs(rewardWithBonus) + Math.abs(this.baseline))) advantage = 0;
        this.advantageVariance += (1 - baselineDecay) * (advantage * advantage - this.advantageVariance);
        const variance = this.advantageVariance / (1 - baselineDecay ** seen);
        return variance > 0 ? advantage / Math.sqrt(variance) : 0;
      });
      // Minimised, so a positive advantage raises log π (ENAS.md §6 #10 on the sign).
      const policyLoss = tf.sum(tf.mul(rollout.crossEntropy(), tf.tensor1d(advantages)));
      const penalty = rollout.penalty();
      const total = penalty ? tf.add(policyLoss, tf.mul(tf.sum(penalty), skipWeight)) : policyLoss;
      return tf.div(total, batch.length) as tf.Scalar;
    }, [...this.params.values()]);
    value.dispose();
    this.adamStep(grads);
    tf.dispose(Object.values(grads).filter((g): g is tf.Tensor => g !== null));
    this.pending = [];
  }

  /** One Adam step (β1 = 0, ε = 1e-3, no clipping, ENAS.md §2). */
  private adamStep(grads: tf.NamedTensorMap): void {
    this.updates++;
    const stepSize = this.options.learningRate * Math.sqrt(1 - ADAM_BETA2 ** this.updates);
    tf.tidy(() => {
      for (const [name, param] of this.params) {
        const grad = grads[param.name] ?? tf.zerosLike(param);
        const secondMoment = this.adamSecondMoment.get(name)!;
        secondMoment.assign(tf.add(tf.mul(secondMoment, ADAM_BETA2), tf.mul(tf.square(grad), 1 - ADAM_BETA2)));
        param.assign(tf.sub(param, tf.div(tf.mul(grad, stepSize), tf.add(tf.sqrt(secondMoment), ADAM_EPSILON))));
      }
    });
  }

  save(): ControllerState {
    const dump = (set: Map<string, tf.Variable>): TensorSet => Object.fromEntries([...set].map(([name, v]) => [name, encode(v)]));
    return {
      format: STATE_FORMAT,
      space: this.spec.space,
      policy: this.options.policy,
      params: dump(this.params),
      adamSecondMoment: dump(this.adamSecondMoment),
      pending: this.pending.map(({ tokens, reward }) => ({ tokens: [...tokens], reward })),
      updates: this.updates,
      baseline: this.baseline,
      advantageVariance: this.advantageVariance,
      rng: this.rng.state,
    };
  }

  /** Restores a `save()` result. Everything is checked before anything changes, so a refused state leaves the controller as it was. */
  load(data: unknown): void {
    const state = checkState(data);
    const problems: string[] = [];
    if (state.space !== this.spec.space) problems.push(`it is for the ${state.space} space, this controller searches ${this.spec.space}`);
    if (state.policy !== this.options.policy) problems.push(`it is for policy "${state.policy}", this controller is "${this.options.policy}"`);
    if (state.pending.length >= this.options.numAggregate)
      problems.push(`it has ${state.pending.length} pending rewards, but numAggregate is ${this.options.numAggregate}`);
    state.pending.forEach(({ tokens }, k) => {
      try {
        fromTokens(this.spec, tokens);
      } catch (error) {
        problems.push(`pending reward ${k}: ${(error as Error).message}`);
      }
    });
    const decoded = new Map<Map<string, tf.Variable>, Map<string, Float32Array>>();
    for (const [key, target] of [
      ['params', this.params],
      ['adamSecondMoment', this.adamSecondMoment],
    ] as const) {
      const set = state[key];
      const values = new Map<string, Float32Array>();
      for (const [name, variable] of target) {
        const entry = set[name];
        const expected = JSON.stringify(variable.shape);
        if (!entry) {
          problems.push(`${key}.${name} is missing`);
          continue;
        }
        if (JSON.stringify(entry.shape) !== expected) {
          problems.push(`${key}.${name} has shape ${JSON.stringify(entry.shape)}, this controller needs ${expected}`);
          continue;
        }
        const bytes = Buffer.from(entry.float32, 'base64');
        if (bytes.length !== variable.size * 4) {
          problems.push(`${key}.${name} holds ${bytes.length} bytes, ${variable.size * 4} expected`);
          continue;
        }
        const array = new Float32Array(variable.size);
        new Uint8Array(array.buffer).set(bytes);
        if (!array.every(Number.isFinite)) problems.push(`${key}.${name} contains non-finite values`);
        values.set(name, array);
      }
      for (const name of Object.keys(set)) if (!target.has(name)) problems.push(`${key}.${name} is not a parameter of this controller`);
      decoded.set(target, values);
    }
    if (problems.length) throw new ValidationError('controller state', problems);
    tf.tidy(() => {
      for (const [target, values] of decoded)
        for (const [name, array] of values) {
          const variable = target.get(name)!;
          variable.assign(tf.tensor(array, variable.shape));
        }
    });
    this.pending = state.pending.map(({ tokens, reward }) => ({ tokens: [...tokens], reward }));
    this.updates = state.updates;
    this.baseline = state.baseline;
    this.advantageVariance = state.advantageVariance ?? 0;
    this.rng = new Random(state.rng);
  }

  dispose(): void {
    for (const set of [this.params, this.adamSecondMoment]) for (const v of set.values()) v.dispose();
  }
}
