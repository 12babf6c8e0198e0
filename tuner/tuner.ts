/*
 * The tuner loop: NNI commands (tuner/protocol.ts) in, a SearchStrategy (tuner/strategy.ts; the
 * ENAS controller in production) driven, NNI commands out, state checkpointed for `nnictl resume`.
 * `runTuner` wires it to the WebSocket (tuner/transport.ts); tuner/main.ts runs it in NNI's
 * dispatcher process, connected before the strategy's heavy modules are loaded: commands wait in
 * order until they are, and a failed load is reported with ER like any fatal error.
 *
 * Rewards go to the tokens proposed under the *metric's* parameter_id: under concurrency NNI may
 * hand a trial another trial's parameters, so EN's hyper_params are not trusted for that
 * (NNI-PROTOCOL.md b.3). A FINAL metric is used once its trial has ended well (EN SUCCEEDED or
 * EARLY_STOPPED; the two may come in either order); FAILED or cancelled trials give no reward.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileChecker, ValidationError } from '../common/validate.js';
import { writeFileAtomic } from '../common/files.js';
import { fromParams, fromTokens, specOfSearchSpace, toParams, toTokens, uniformTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import type { RewardOptions } from './args.js';
import {
  decodeCommand,
  errorCommand,
  importedValue,
  initializedCommand,
  metricValue,
  newTrialCommand,
  type Command,
  type ImportedTrial,
  type IncomingCommand,
  type TrialEvent,
  type TrialParameters,
} from './protocol.js';
import type { SearchStrategy } from './strategy.js';
import type { Logger, ParsedFrame, WsTransport } from './transport.js';

export interface TunerConfig {
  /** Builds the strategy for a search space (production: the controller with the classArgs). */
  createStrategy(spec: SpaceSpec): SearchStrategy;
  reward: RewardOptions;
  /** NNI_CHECKPOINT_DIRECTORY; no checkpoints without it. */
  checkpointDir?: string;
  /**
   * classArgs warmup_trials: parameter ids below `trials` get uniform architectures drawn from
   * (seed, id), and their rewards are recorded but not given to the strategy. Unset: no warm-up.
   */
  warmup?: { trials: number; seed: number };
  /** NNI_MODE=resume: restore the checkpoint at IN. */
  resume: boolean;
  log: Logger;
}

/** One reward the strategy was given (the checkpoint's history). */
export interface RewardRecord {
  /** The metric's parameter_id; null for web-UI trials and imported data. */
  parameterId: number | null;
  trialJobId: string | null;
  source: 'trial' | 'customized' | 'imported';
  tokens: number[];
  reward: number;
}

/** What `checkpointFile` holds. History and strategy state are always saved together. */
export interface Checkpoint {
  format: typeof CHECKPOINT_FORMAT;
  spec: SpaceSpec;
  nextParameterId: number;
  /** Proposals still awaiting their FINAL metric. */
  outstanding: { parameterId: number; tokens: number[] }[];
  history: RewardRecord[];
  /** Trials whose FINAL metric was refused (the trial failed): a resume's FD must not use them. */
  discardedTrials: string[];
  strategy: unknown;
}

const CHECKPOINT_FORMAT = 'nni-enas-tuner-checkpoint/1';
export const CHECKPOINT_FILE = 'nni-enas-tuner.json';

const checkCheckpoint = compileChecker<Checkpoint>(
  {
    type: 'object',
    properties: {
      format: { const: CHECKPOINT_FORMAT },
      spec: { type: 'object' },
      nextParameterId: { type: 'integer', minimum: 0 },
      outstanding: {
        type: 'array',
        items: {
          type: 'object',
          properties: { parameterId: { type: 'integer', minimum: 0 }, tokens: { type: 'array', items: { type: 'integer' } } },
          required: ['parameterId', 'tokens'],
          additionalProperties: false,
        },
      },
      history: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            parameterId: { type: ['integer', 'null'] },
            trialJobId: { type: ['string', 'null'] },
            source: { enum: ['trial', 'customized', 'imported'] },
            tokens: { type: 'array', items: { type: 'integer' } },
            reward: { type: 'number' },
          },
          required: ['parameterId', 'trialJobId', 'source', 'tokens', 'reward'],
          additionalProperties: false,
        },
      },
      discardedTrials: { type: 'array', items: { type: 'string' } },
      strategy: {},
    },
    required: ['format', 'spec', 'nextParameterId', 'outstanding', 'history', 'discardedTrials', 'strategy'],
    additionalProperties: false,
  },
  'tuner checkpoint',
);

/** Trial ends whose FINAL metric is not a reward. */
const FAILED_EVENTS: ReadonlySet<TrialEvent> = new Set(['FAILED', 'USER_CANCELED', 'SYS_CANCELED']);

/** A FINAL metric waiting for its trial's EN. `tokens` is null for a web-UI trial (they come with EN). */
interface PendingReward {
  parameterId: number | null;
  tokens: number[] | null;
  reward: number;
}

/** The reward of a decoded metric value (a number, or a dict holding the configured key). */
export function rewardOf(value: unknown, options: RewardOptions): number {
  const metric =
    typeof value === 'number'
      ? options.metric === 'default'
        ? value
        : undefined
      : value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)[options.metric]
        : undefined;
  if (typeof metric !== 'number' || !Number.isFinite(metric))
    throw new Error(`metric ${JSON.stringify(value)} has no number under "${options.metric}" (classArg reward_metric)`);
  if (options.transform === 'identity') return metric;
  if (metric <= 0) throw new Error(`metric ${metric} cannot be inverted (reward_transform "inverse" needs it > 0)`);
  return options.constant / metric;
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The protocol state machine. `handle` processes one command and returns false once the tuner
 * must exit (TE). Anything it throws is fatal (the caller reports ER and exits non-zero);
 * problems with single trials or frames are logged and survived.
 */
export class Tuner {
  private readonly log: Logger;
  private spec: SpaceSpec | null = null;
  private strategy: SearchStrategy | null = null;
  private nextParameterId = 0;
  private outstanding = new Map<number, number[]>();
  private history: RewardRecord[] = [];
  private discardedTrials = new Set<string>();
  /** FINAL metrics seen, EN not yet, by trial job id. */
  private readonly pending = new Map<string, PendingReward>();
  /** EN seen, FINAL not yet (NNI may forward a metric after the end). */
  private readonly ended = new Map<string, { event: TrialEvent; hyperParams: TrialParameters }>();
  /** Between ID and GE of a resume, FD replays what the manager knows; later FDs are new imports. */
  private replaying = false;

  constructor(
    private readonly config: TunerConfig,
    private readonly send: (command: Command) => void,
  ) {
    this.log = config.log;
  }

  handle(command: IncomingCommand): boolean {
    switch (command.type) {
      case 'IN':
        this.initialize(command.searchSpace);
        return true;
      case 'SS':
        this.updateSearchSpace(command.searchSpace);
        return true;
      case 'GE':
        this.replaying = false;
        this.propose(command.count);
        return true;
      case 'ME':
        this.onMetric(command);
        return true;
      case 'EN':
        this.onTrialEnd(command.trialJobId, command.event, command.hyperParams);
        return true;
      case 'FD':
        this.importTrials(command.trials);
        return true;
      case 'AD':
        this.replaying = false;
        this.recoverTrials(command.trials);
        return true;
      case 'TE':
        this.log.info('TE: terminating');
        if (this.strategy) this.checkpoint();
        return false;
    }
  }

  dispose(): void {
    this.strategy?.dispose();
    this.strategy = null;
  }

  private initialize(searchSpace: unknown): void {
    if (this.strategy) {
      // The Python dispatcher treats a repeated IN as a search-space update and answers again.
      this.log.warning('IN received again; treating it as a search-space update');
      this.updateSearchSpace(searchSpace);
      this.send(initializedCommand());
      return;
    }
    const spec = this.specOf(searchSpace);
    this.strategy = this.config.createStrategy(spec);
    this.spec = spec;
    this.log.info(`IN: ${spec.space} search space ${JSON.stringify(spec)}`);
    if (this.config.resume) this.restore();
    this.send(initializedCommand());
  }

  private specOf(searchSpace: unknown): SpaceSpec {
    try {
      return specOfSearchSpace(searchSpace);
    } catch (error) {
      if (error instanceof ValidationError)
        throw new Error(`the search space is not one of nni-enas's spaces (write one with \`nni-enas space\`): ${error.message}`);
      throw error;
    }
  }

  private updateSearchSpace(searchSpace: unknown): void {
    const spec = this.specOf(searchSpace);
    if (!this.strategy) throw new Error('SS arrived before IN');
    if (JSON.stringify(spec) === JSON.stringify(this.spec)) {
      this.log.info('SS: the search space is unchanged; the controller keeps its state');
      return;
    }
    this.strategy.dispose();
    this.strategy = null;
    this.strategy = this.config.createStrategy(spec);
    this.spec = spec;
    // Proposals of the old space cannot be scored in the new one; their metrics will be ignored.
    this.log.info(`SS: new ${spec.space} search space; controller re-initialised, ${this.outstanding.size + this.pending.size} old proposals dropped`);
    this.outstanding.clear();
    this.pending.clear();
    this.checkpoint();
  }

  private propose(count: number): void {
    if (!this.strategy || !this.spec) {
      this.log.warning(`GE ${count} before IN ignored`);
      return;
    }
    const batch: [number, Record<string, unknown>][] = [];
    for (let i = 0; i < count; i++) {
      const id = this.nextParameterId++;
      const tokens = this.inWarmup(id) ? uniformTokens(this.spec, this.config.warmup!.seed, id) : this.strategy.propose();
      const parameters = toParams(fromTokens(this.spec, tokens), this.spec);
      this.outstanding.set(id, tokens);
      batch.push([id, parameters]);
    }
    // Written before the TRs go out: after a crash, a resume must not reuse an id already sent.
    this.checkpoint();
    for (const [id, parameters] of batch) this.send(newTrialCommand(id, parameters));
    if (count > 0) this.log.info(`GE ${count}: proposed parameter ids ${batch[0]![0]}..${batch.at(-1)![0]}`);
  }

  private onMetric(command: Extract<IncomingCommand, { type: 'ME' }>): void {
    const record = command.metric;
    const trial = record.trial_job_id;
    if (record.type !== 'FINAL') {
      this.log.debug(`${record.type} metric of trial ${trial} (parameter ${record.parameter_id}) not used`);
      return;
    }
    let reward: number;
    try {
      reward = rewardOf(metricValue(record), this.config.reward);
    } catch (error) {
      this.log.warning(`trial ${trial}: no reward from its FINAL metric: ${message(error)}`);
      return;
    }
    if (this.pending.has(trial)) {
      this.log.warning(`trial ${trial} reported a second FINAL metric; only the first is used`);
      return;
    }
    const id = record.parameter_id ?? null;
    let tokens: number[] | null = null;
    if (id !== null) {
      tokens = this.outstanding.get(id) ?? null;
      if (!tokens) {
        this.log.warning(
          `trial ${trial}: FINAL metric for parameter id ${id} ignored: no proposal awaits it (unknown id, already scored, or from a replaced search space)`,
        );
        return;
      }
      this.outstanding.delete(id);
    }
    const result = { parameterId: id, tokens, reward };
    const end = this.ended.get(trial);
    if (end) {
      this.log.info(`trial ${trial}: FINAL metric after its end`);
      this.ended.delete(trial);
      this.settle(trial, result, end.event, end.hyperParams);
    } else this.pending.set(trial, result);
  }

  private onTrialEnd(trial: string, event: TrialEvent, hyperParams: TrialParameters): void {
    const result = this.pending.get(trial);
    if (result) {
      this.pending.delete(trial);
      this.settle(trial, result, event, hyperParams);
      return;
    }
    this.ended.set(trial, { event, hyperParams });
    this.log.info(`trial ${trial} ended ${event} without a FINAL metric: no reward`);
  }

  /** A trial has both its FINAL metric and its end: feed the reward, or say why not. */
  private settle(trial: string, result: PendingReward, event: TrialEvent, hyperParams: TrialParameters): void {
    if (FAILED_EVENTS.has(event)) {
      this.discardedTrials.add(trial);
      this.log.info(`trial ${trial} ended ${event}: its FINAL metric (reward ${result.reward}) is not used`);
      // At once, not at the next GE: a resume's FD lists this trial with its metric and no status,
      // so only the checkpoint can tell the resumed tuner to leave it out.
      this.checkpoint();
      return;
    }
    let tokens = result.tokens;
    let source: RewardRecord['source'] = 'trial';
    if (!tokens) {
      // A web-UI trial: its metric has no parameter id, so its parameters can only come from EN.
      if (hyperParams.parameter_id !== null) {
        this.log.warning(
          `trial ${trial} ran foreign parameters but NNI recorded parameter id ${hyperParams.parameter_id} for it ` +
            '(its parameter queue swapped them between trials); the reward cannot be attributed and is dropped',
        );
        return;
      }
      tokens = this.foreignTokens(hyperParams.parameters, `web-UI trial ${trial}`);
      if (!tokens) return;
      source = 'customized';
    }
    this.feed({ parameterId: result.parameterId, trialJobId: trial, source, tokens, reward: result.reward });
  }

  /** Tokens of parameters we did not propose, or null (logged) if they are not of our space. */
  private foreignTokens(parameters: unknown, what: string): number[] | null {
    try {
      return toTokens(fromParams(this.spec!, parameters), this.spec!);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      this.log.info(`${what} ignored: ${error.message}`);
      return null;
    }
  }

  private inWarmup(parameterId: number | null): boolean {
    return parameterId !== null && parameterId < (this.config.warmup?.trials ?? 0);
  }

  private feed(record: RewardRecord): void {
    this.history.push(record);
    if (this.inWarmup(record.parameterId)) {
      this.log.info(`reward ${record.reward} for warm-up parameter ${record.parameterId} (trial ${record.trialJobId ?? '-'}) recorded, not used`);
      this.checkpoint();
      return;
    }
    const updated = this.strategy!.observe(record.tokens, record.reward);
    const id = record.parameterId ?? record.source;
    this.log.info(`reward ${record.reward} for parameter ${id} (trial ${record.trialJobId ?? '-'})${updated ? '; policy updated' : ''}`);
    if (updated) this.checkpoint();
  }

  private importTrials(trials: ImportedTrial[]): void {
    if (!this.strategy) {
      this.log.warning('FD before IN ignored');
      return;
    }
    // A resume replays every finished trial and every earlier import: skip what the checkpointed
    // strategy already counted (by trial id; imports, which have none, by tokens and reward).
    const countedTrials = new Set(this.history.map((r) => r.trialJobId).filter((t) => t !== null));
    const importKey = (tokens: readonly number[], reward: number) => `${tokens.join(',')}|${reward}`;
    const countedImports = new Map<string, number>();
    for (const r of this.history) {
      if (r.source !== 'imported') continue;
      const key = importKey(r.tokens, r.reward);
      countedImports.set(key, (countedImports.get(key) ?? 0) + 1);
    }
    let fed = 0;
    let warmup = 0;
    let skipped = 0;
    let ignored = 0;
    for (const trial of trials) {
      if (this.replaying && trial.trialJobId && (countedTrials.has(trial.trialJobId) || this.discardedTrials.has(trial.trialJobId))) {
        skipped++;
        continue;
      }
      let reward: number;
      try {
        reward = rewardOf(importedValue(trial), this.config.reward);
      } catch (error) {
        this.log.info(`imported trial ${trial.trialJobId ?? JSON.stringify(trial.parameter)} ignored: ${message(error)}`);
        ignored++;
        continue;
      }
      const tokens = this.foreignTokens(trial.parameter, `imported trial ${trial.trialJobId ?? ''}`.trim());
      if (!tokens) {
        ignored++;
        continue;
      }
      const key = importKey(tokens, reward);
      if (this.replaying && !trial.trialJobId && (countedImports.get(key) ?? 0) > 0) {
        countedImports.set(key, countedImports.get(key)! - 1);
        skipped++;
        continue;
      }
      // A trial that ended while the tuner was down comes back without its parameter id. If its
      // architecture is that of an outstanding warm-up proposal, it answers that one and stays out
      // of the controller as a live warm-up metric would. (Only warm-up proposals are matched: their
      // uniform architectures are not the controller's, whose repeats could be mistaken for each other.)
      const parameterId = this.replaying && trial.trialJobId ? this.claimWarmupProposal(tokens) : null;
      this.feed({ parameterId, trialJobId: trial.trialJobId ?? null, source: trial.trialJobId ? 'trial' : 'imported', tokens, reward });
      if (this.inWarmup(parameterId)) warmup++;
      else fed++;
    }
    const warmupPart = warmup ? `, ${warmup} warm-up rewards recorded, not used` : '';
    this.log.info(`FD: ${trials.length} trials: ${fed} fed to the controller${warmupPart}, ${skipped} already in the checkpoint, ${ignored} ignored`);
  }

  /** Removes and returns the lowest outstanding warm-up parameter id proposed with `tokens`, if any. */
  private claimWarmupProposal(tokens: readonly number[]): number | null {
    const key = tokens.join(',');
    const ids = [...this.outstanding].filter(([id, proposed]) => this.inWarmup(id) && proposed.join(',') === key).map(([id]) => id);
    if (!ids.length) return null;
    const id = Math.min(...ids);
    this.outstanding.delete(id);
    return id;
  }

  private recoverTrials(trials: TrialParameters[]): void {
    if (!this.strategy) {
      this.log.warning('AD before IN ignored');
      return;
    }
    // Only these trials will run again; any other proposal still awaiting a reward never will.
    const kept = new Map<number, number[]>();
    for (const trial of trials) {
      const id = trial.parameter_id;
      if (id === null) continue; // a web-UI trial: handled by its metric and EN like any other
      const tokens = this.outstanding.get(id) ?? this.foreignTokens(trial.parameters, `recovered trial with parameter id ${id}`);
      if (!tokens) continue;
      kept.set(id, tokens);
      this.nextParameterId = Math.max(this.nextParameterId, id + 1);
    }
    const dropped = [...this.outstanding.keys()].filter((id) => !kept.has(id));
    this.outstanding = kept;
    this.log.info(`AD: ${kept.size} recovered trials await rewards${dropped.length ? `; ${dropped.length} proposals that will not run dropped (ids ${dropped.join(', ')})` : ''}`);
  }

  private get checkpointPath(): string | null {
    return this.config.checkpointDir ? join(this.config.checkpointDir, CHECKPOINT_FILE) : null;
  }

  /** Reads the checkpoint at IN of a resume; ids always continue, the rest only for the same space. */
  private restore(): void {
    this.replaying = true;
    const path = this.checkpointPath;
    if (!path || !existsSync(path)) {
      this.log.info(`resume without a checkpoint${path ? ` at ${path}` : ''}: the controller starts afresh`);
      return;
    }
    let checkpoint: Checkpoint;
    try {
      checkpoint = checkCheckpoint(JSON.parse(readFileSync(path, 'utf8')));
    } catch (error) {
      throw new Error(`cannot resume from ${path}: ${message(error)}`);
    }
    this.nextParameterId = checkpoint.nextParameterId;
    this.history = checkpoint.history;
    this.discardedTrials = new Set(checkpoint.discardedTrials);
    if (JSON.stringify(checkpoint.spec) !== JSON.stringify(this.spec)) {
      this.log.warning(`checkpoint ${path} is for another search space; the controller starts afresh (parameter ids continue at ${this.nextParameterId})`);
      return;
    }
    try {
      this.strategy!.load(checkpoint.strategy);
    } catch (error) {
      throw new Error(`cannot resume from ${path}: ${message(error)}`);
    }
    this.outstanding = new Map(checkpoint.outstanding.map((p) => [p.parameterId, p.tokens]));
    this.log.info(
      `resumed from ${path}: ${this.history.length} rewards, ${this.outstanding.size} proposals awaiting rewards, next parameter id ${this.nextParameterId}`,
    );
  }

  private checkpoint(): void {
    const path = this.checkpointPath;
    if (!path || !this.strategy || !this.spec) return;
    const checkpoint: Checkpoint = {
      format: CHECKPOINT_FORMAT,
      spec: this.spec,
      nextParameterId: this.nextParameterId,
      outstanding: [...this.outstanding].map(([parameterId, tokens]) => ({ parameterId, tokens })),
      history: this.history,
      discardedTrials: [...this.discardedTrials],
      strategy: this.strategy.save(),
    };
    try {
      writeFileAtomic(path, JSON.stringify(checkpoint));
    } catch (error) {
      // The search goes on; only a later resume would start from an older state.
      this.log.error(`checkpoint not written to ${path}: ${message(error)}`);
    }
  }
}

/** What the tuner takes from the heavy modules (TensorFlow.js, the controller) and the classArgs. */
export type StrategySetup = Pick<TunerConfig, 'createStrategy' | 'reward' | 'warmup'>;

export interface RunOptions extends Omit<TunerConfig, keyof StrategySetup> {
  /** The channel to the manager, already started: its frames wait there until the setup is loaded. */
  transport: WsTransport;
  /**
   * Loads the strategy's modules and checks the classArgs, once, as runTuner starts. A rejection
   * (bad classArgs, a backend that does not start) is reported with ER at IN; the tuner exits 1.
   */
  load(): Promise<StrategySetup>;
}

/** Longest frame text quoted in the log (a resume's FD can be megabytes). */
const LOGGED_FRAME_CHARS = 2000;
const clip = (text: string): string => (text.length > LOGGED_FRAME_CHARS ? `${text.slice(0, LOGGED_FRAME_CHARS)}… (${text.length} chars)` : text);

/**
 * Runs the tuner on a started transport until TE, `_bye_`, a lost connection or a fatal error.
 * Resolves with the process exit code (0 only for TE and `_bye_`).
 */
export function runTuner(options: RunOptions): Promise<number> {
  const { log, transport } = options;
  const send = (command: Command) => {
    log.debug(`send ${clip(JSON.stringify(command))}`);
    transport.send(command);
  };
  let tuner: Tuner | null = null;
  /** Set when the load failed: the error waits for IN, the first moment ER may be sent. */
  let loadError: Error | null = null;
  /** From IN on, errors are reported to the manager with ER (NNI-PROTOCOL a.5). */
  let initialized = false;
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      tuner?.dispose();
      resolve(code);
    };
    /** `logged`: the error is already in the log (a load failure is logged when it happens, before any IN). */
    const fail = async (error: unknown, logged = false) => {
      done = true;
      const text = message(error);
      if (!logged) log.error(`fatal: ${text}`);
      if (error instanceof Error && error.stack) log.debug(error.stack);
      if (initialized) {
        transport.send(errorCommand(`nni-enas tuner: ${text}`));
        await transport.close('tuner error');
      } else transport.terminate('tuner error before IN');
      tuner?.dispose();
      resolve(1);
    };
    const onFrame = (text: string, parsed: ParsedFrame) => {
      if (done) return;
      let command: IncomingCommand;
      try {
        if (!parsed.ok) throw new ValidationError('NNI command', [`not JSON (${parsed.error})`]);
        command = decodeCommand(parsed.value);
      } catch (error) {
        log.error(`bad frame ignored (${message(error)}): ${clip(text)}`);
        return;
      }
      log.debug(`receive ${clip(text)}`);
      if (command.type === 'IN') initialized = true;
      if (loadError) {
        if (initialized) void fail(loadError, true);
        else log.warning(`${command.type} before IN ignored`);
        return;
      }
      try {
        if (!tuner!.handle(command)) {
          transport.terminate('TE');
          finish(0);
        }
      } catch (error) {
        void fail(error);
      }
    };
    transport.onEnd((end) => {
      if (end.reason === 'bye') {
        log.info('the manager closed the channel; exiting');
        finish(0);
      } else {
        log.error(end.error.message);
        finish(1);
      }
    });
    options.load().then(
      (setup) => {
        if (done) return;
        tuner = new Tuner({ ...options, ...setup }, send);
        transport.onFrame(onFrame);
      },
      (error: unknown) => {
        if (done) return;
        loadError = error instanceof Error ? error : new Error(String(error));
        log.error(`fatal: ${message(loadError)}`);
        transport.onFrame(onFrame);
      },
    );
  });
}
