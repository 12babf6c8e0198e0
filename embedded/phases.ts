/*
 * One ENAS epoch in three phases (ENAS.md §3), on the parts built by search-setup.ts:
 *   child       one fresh architecture from the controller per training minibatch, one step each;
 *   controller  controllerSteps × numAggregate samples, each rewarded on the next validation
 *               minibatch (ENAS.md §2), the controller updating every numAggregate rewards;
 *   report      reportSamples architectures scored on a minibatch each and printed, and the best
 *               of them evaluated on the whole validation split.
 * Two deviations are settings (docs/embedded.md, "Does the controller help?"): warm-up epochs
 * train on uniformly random architectures and skip the controller phase; `rewardBatches` scores
 * all rewards of one update on the same K batches instead of the next single one.
 * The child and controller phases stop between two units of work when asked (Ctrl-C); every
 * counter they touch lives in SearchState, so a checkpoint taken there resumes exactly.
 */
import type { RunWriter } from '../common/results.js';
import type { Genotype } from '../search-spaces/genotype.js';
import { decisions, fromTokens, toParams, uniformTokens } from '../search-spaces/spaces.js';
import type { Trainer } from '../trial/task.js';
import type { EnasController } from '../tuner/controller.js';
import { rankInto, type ScoredArchitecture } from './architectures.js';
import type { HistoryLog } from './history.js';
import { nextTick, type StopRequest } from './interrupt.js';
import { formatDuration, type EtaEstimator, type ProgressLine } from './progress.js';
import { emptyEpochSums, emptyUpdateSums, type SearchParts, type SearchState } from './search-setup.js';
import type { SearchSettings } from './settings.js';

/** Kinds of work the ETA tells apart: a training step, a minibatch reward sample, a whole-split validation. */
export type WorkKind = 'child' | 'sample' | 'validation';

/** Where the search's messages go. */
export interface SearchIo {
  /** A line of the run's log (stdout). */
  print(line: string): void;
  progress: ProgressLine;
  stop: StopRequest;
}

/** How many best architectures the search keeps in best-architectures.json. */
const BEST_KEPT = 5;

export interface SearchContext {
  settings: SearchSettings;
  parts: SearchParts;
  trainer: Trainer;
  state: SearchState;
  history: HistoryLog;
  trials: RunWriter;
  io: SearchIo;
  eta: EtaEstimator<WorkKind>;
  /** Seconds the search has run so far, summed over its processes, this one included. */
  seconds(): number;
  /** The latest numbers, for the progress line. */
  latest: { loss?: number; accuracy?: number; reward?: number; baseline?: number; entropy?: number };
}

/** Text tasks decay the supernet's learning rate in steps, ×0.96 per epoch from epoch 15 (the paper's PTB search, ENAS.md §1 PTB). */
const TEXT_LR_DECAY = { factor: 0.96, fromEpoch: 15 };

/** The child learning rate at `step`: the task's schedule (trial/task.ts: cosine restarts for CNNs), staircase-decayed for text. */
export function searchLr(parts: SearchParts, step: number): number {
  const { task } = parts;
  const lr = task.searchLr(step);
  if (task.kind === 'image') return lr;
  const epoch = Math.floor(step / task.batchesPerEpoch) + 1;
  return lr * TEXT_LR_DECAY.factor ** Math.max(0, epoch - TEXT_LR_DECAY.fromEpoch + 1);
}

const samplesPerEpoch = (settings: SearchSettings): number => settings.schedule.controllerSteps * settings.controller.numAggregate;

/** Epoch `epoch` (0-based) is a warm-up epoch: uniformly random architectures, no controller phase. */
const inWarmup = (settings: SearchSettings, epoch: number): boolean => epoch < settings.schedule.warmupEpochs;

/** Reward samples of epoch `epoch` (0-based): none while warming up. */
const samplesOfEpoch = (settings: SearchSettings, epoch: number): number => (inWarmup(settings, epoch) ? 0 : samplesPerEpoch(settings));

/** Validation batches the reward samples of epochs `from` … last (0-based) score on, for the ETA. */
function rewardBatchesFrom(settings: SearchSettings, from: number): number {
  const { epochs, warmupEpochs, rewardBatches } = settings.schedule;
  return Math.max(0, epochs - Math.max(from, warmupEpochs)) * samplesPerEpoch(settings) * (rewardBatches ?? 1);
}

/**
 * The warm-up architecture of global step `step`: uniform, drawn from (seed, step) alone, so a
 * resumed search trains on the same ones without a generator state in the checkpoint.
 */
function warmupArchitecture(settings: SearchSettings, step: number): Genotype {
  return fromTokens(settings.spec, uniformTokens(settings.spec, settings.controller.seed, step));
}

/**
 * Where the reward of the next sample is measured: the next single validation batch (the
 * reference), or with `rewardBatches` K the K batches of the update in progress, the same for all
 * of its samples (update u reads batches u·K … u·K + K − 1 of the walk through the split).
 */
function rewardBatchesOf(settings: SearchSettings, state: SearchState): { first: number; count: number } {
  const k = settings.schedule.rewardBatches;
  return k === null ? { first: state.validCursor++, count: 1 } : { first: state.updates * k, count: k };
}

/**
 * Entropy of the policy, estimated by −log π of a sampled architecture under the θ that sampled
 * it (its mean over samples is the entropy of the whole sequence). The random policy samples
 * uniformly, so its entropy is exact: Σ log(choices).
 */
function sampleEntropy(controller: EnasController, tokens: readonly number[]): number {
  if (controller.options.policy === 'random') return decisions(controller.spec).reduce((sum, d) => sum + Math.log(d.choices.length), 0);
  return -controller.logProbability(tokens);
}

function showProgress(ctx: SearchContext, where: string): void {
  const { settings, state, parts, eta, latest } = ctx;
  const { epochs } = settings.schedule;
  const perEpoch = parts.task.batchesPerEpoch;
  const { reportSamples, deriveSamples, deriveValidBatches, rewardBatches } = settings.schedule;
  // A reward on K batches costs about K single-batch samples: the ETA counts batches scored.
  const epochsAfter = Math.max(0, epochs - state.epoch - 1);
  const childLeft = epochsAfter * perEpoch + (state.phase === 'child' ? perEpoch - state.phaseDone : 0);
  const doneThisEpoch = state.phase === 'child' ? 0 : state.phaseDone * (rewardBatches ?? 1);
  const samplesLeft = rewardBatchesFrom(settings, state.epoch) - doneThisEpoch + (epochsAfter + 1) * reportSamples;
  // The closing derive scores its samples on the whole split (validations) or on k batches each (about k reward samples).
  const remaining = {
    child: childLeft,
    sample: samplesLeft + (deriveValidBatches === null ? 0 : deriveSamples * deriveValidBatches),
    validation: epochs - state.epoch + (deriveValidBatches === null ? deriveSamples : 0),
  };
  const left = eta.eta(remaining);
  const done = ctx.seconds();
  // Until every kind of work is timed, the fraction counts training steps and reward samples alike.
  const units = epochs * (perEpoch + reportSamples) + rewardBatchesFrom(settings, 0);
  const fraction = left === null || left.partial ? 1 - (childLeft + samplesLeft) / units : done / (done + left.seconds);
  const f = (x: number | undefined, digits = 3) => (x === undefined ? '--' : x.toFixed(digits));
  const stats = [
    `reward ${f(latest.reward)} (baseline ${f(latest.baseline)})`,
    `entropy ${f(latest.entropy, 1)}`,
    `loss ${f(latest.loss)}`,
    ...(latest.accuracy !== undefined ? [`acc ${f(latest.accuracy)}`] : []),
    `${formatDuration(done)} in`,
  ].join(' ');
  ctx.io.progress.update({ label: `epoch ${state.epoch + 1}/${epochs} ${where}`, fraction, etaSeconds: left?.seconds ?? null, etaPartial: left?.partial, stats });
}

/** The child phase, from wherever the state says; false if it stopped early on request. */
export async function childPhase(ctx: SearchContext): Promise<boolean> {
  const { parts, state } = ctx;
  const total = parts.task.batchesPerEpoch;
  while (state.phaseDone < total) {
    if (ctx.io.stop.requested) return false;
    const started = performance.now();
    const genotype = inWarmup(ctx.settings, state.epoch) ? warmupArchitecture(ctx.settings, state.globalStep) : fromTokens(ctx.settings.spec, parts.controller.propose());
    const lr = searchLr(parts, state.globalStep);
    const stats = ctx.trainer.step(genotype, lr);
    if (!Number.isFinite(stats.loss))
      throw new Error(
        `the shared weights diverged: training loss ${stats.loss} at epoch ${state.epoch + 1}, step ${state.phaseDone + 1} (lr ${lr}); ` +
          `the checkpoint holds the search before epoch ${state.epoch + 1}`,
      );
    state.globalStep++;
    state.phaseDone++;
    const sums = state.epochSums;
    sums.steps++;
    sums.trainLoss += stats.loss;
    sums.trainAccuracy += stats.accuracy ?? 0;
    const seconds = (performance.now() - started) / 1000;
    sums.childSeconds += seconds;
    ctx.eta.record('child', seconds);
    // A short moving average: single minibatches are too noisy to read.
    const smooth = (old: number | undefined, now: number) => (old === undefined ? now : 0.9 * old + 0.1 * now);
    ctx.latest.loss = smooth(ctx.latest.loss, stats.loss);
    if (stats.accuracy !== undefined) ctx.latest.accuracy = smooth(ctx.latest.accuracy, stats.accuracy);
    showProgress(ctx, `child ${state.phaseDone}/${total}`);
    await nextTick();
  }
  return true;
}

/** The controller phase; false if it stopped early on request. */
export async function controllerPhase(ctx: SearchContext): Promise<boolean> {
  const { parts, state, settings } = ctx;
  const { controller, task } = parts;
  const total = samplesOfEpoch(settings, state.epoch);
  while (state.phaseDone < total) {
    if (ctx.io.stop.requested) return false;
    const started = performance.now();
    // θ only changes at an update, so the samples up to the next one are proposed in order, scored
    // together (a model with replicas scores several at once) and observed in order: the same
    // numbers as one at a time, whatever the grouping, so a resumed search matches an unbroken one.
    const group = Math.min(total - state.phaseDone, settings.controller.numAggregate - state.updateSums.samples);
    const samples = Array.from({ length: group }, () => {
      const tokens = controller.propose();
      const genotype = fromTokens(settings.spec, tokens);
      return { tokens, genotype, entropy: sampleEntropy(controller, tokens), ...rewardBatchesOf(settings, state) };
    });
    const scores = task.scoreAll(parts.model, samples);
    samples.forEach(({ tokens, genotype, entropy }, i) => {
      const score = scores[i]!;
      ctx.trials.append({
        seconds: ctx.seconds(),
        parameter_id: state.samples,
        parameters: toParams(genotype, settings.spec),
        metric: score.reward,
        extra: { epoch: state.epoch + 1, loss: score.loss, ...(score.perplexity !== undefined && { perplexity: score.perplexity }) },
      });
      state.samples++;
      for (const sums of [state.epochSums, state.updateSums]) {
        sums.samples++;
        sums.reward += score.reward;
        sums.entropy += entropy;
      }
      const updated = controller.observe(tokens, score.reward);
      // The random policy never updates; its records still mark every numAggregate samples.
      if (updated || state.updateSums.samples === settings.controller.numAggregate) {
        state.updates++;
        const { reward, entropy: entropySum, samples: n } = state.updateSums;
        const baseline = controller.save().baseline;
        ctx.history.append({
          type: 'update',
          epoch: state.epoch + 1,
          update: state.updates,
          globalStep: state.globalStep,
          reward: reward / n,
          baseline,
          entropy: entropySum / n,
          seconds: ctx.seconds(),
        });
        Object.assign(ctx.latest, { reward: reward / n, baseline, entropy: entropySum / n });
        state.updateSums = emptyUpdateSums();
      }
      state.phaseDone++;
    });
    const seconds = (performance.now() - started) / 1000;
    state.epochSums.controllerSeconds += seconds;
    ctx.eta.record('sample', seconds, samples.reduce((batches, s) => batches + s.count, 0));
    showProgress(ctx, `controller ${state.phaseDone}/${total}`);
    await nextTick();
  }
  return true;
}

/**
 * The report and evaluation closing an epoch (not interruptible: it takes seconds). Appends the
 * epoch's history record, updates the best-so-far list and moves the state to the next epoch.
 */
export function reportPhase(ctx: SearchContext): void {
  const { parts, state, settings } = ctx;
  const { task, controller, model } = parts;
  const started = performance.now();
  const proposed = Array.from({ length: settings.schedule.reportSamples }, () => controller.propose());
  const scores = task.scoreAll(
    model,
    proposed.map((tokens) => ({ genotype: fromTokens(settings.spec, tokens), first: state.validCursor++, count: 1 })),
  );
  const report: ScoredArchitecture[] = proposed.map((tokens, k) => ({ tokens, score: scores[k]! }));
  ctx.eta.record('sample', (performance.now() - started) / 1000, report.length);
  const chosen = report.reduce((best, entry) => (entry.score.reward > best.score.reward ? entry : best));
  const validStarted = performance.now();
  const valid = task.validate(model, fromTokens(settings.spec, chosen.tokens));
  ctx.eta.record('validation', (performance.now() - validStarted) / 1000);
  const epoch = state.epoch + 1;
  state.best = rankInto(state.best, { tokens: chosen.tokens, score: valid, epoch }, BEST_KEPT);

  const sums = state.epochSums;
  const image = task.kind === 'image';
  const baseline = controller.save().baseline;
  const reportSeconds = (performance.now() - started) / 1000;
  ctx.history.append({
    type: 'epoch',
    epoch,
    globalStep: state.globalStep,
    lr: searchLr(parts, state.globalStep - 1),
    trainLoss: sums.trainLoss / sums.steps,
    trainAccuracy: image ? sums.trainAccuracy / sums.steps : null,
    reward: sums.samples ? sums.reward / sums.samples : null,
    baseline,
    entropy: sums.samples ? sums.entropy / sums.samples : null,
    report: report.map((entry) => ({ reward: entry.score.reward, tokens: entry.tokens })),
    valid: {
      reward: valid.reward,
      loss: valid.loss,
      accuracy: valid.accuracy ?? null,
      perplexity: valid.perplexity ?? null,
      tokens: chosen.tokens,
    },
    seconds: ctx.seconds(),
    phaseSeconds: { child: sums.childSeconds, controller: sums.controllerSeconds, report: reportSeconds },
  });
  const rewards = report.map((entry) => entry.score.reward);
  const validText = image ? `accuracy ${valid.accuracy!.toFixed(4)}` : `perplexity ${valid.perplexity!.toFixed(1)}`;
  ctx.io.print(
    `epoch ${epoch}/${settings.schedule.epochs}: train loss ${(sums.trainLoss / sums.steps).toFixed(4)}` +
      (image ? ` acc ${(sums.trainAccuracy / sums.steps).toFixed(4)}` : '') +
      (sums.samples
        ? ` | controller reward ${(sums.reward / sums.samples).toFixed(4)} baseline ${baseline.toFixed(4)} entropy ${(sums.entropy / sums.samples).toFixed(2)}`
        : ' | warm-up: uniformly random architectures, no controller phase') +
      ` | ${rewards.length} samples ${Math.min(...rewards).toFixed(3)}–${Math.max(...rewards).toFixed(3)}, best on the whole validation split: ${validText}` +
      ` | ${formatDuration(ctx.seconds())}`,
  );
  state.epoch = epoch;
  state.phase = 'child';
  state.phaseDone = 0;
  state.epochSums = emptyEpochSums();
}
