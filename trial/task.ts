/*
 * Everything a run needs, built once from the trial options and the architecture's space: the
 * data (loaded, split, normalised, batched), the supernet or the fixed network at the configured
 * sizes, the learning-rate schedules, and the reward. The trial modes (trial/*-mode.ts) and the
 * embedded runner share it, so a trial means the same thing wherever it runs.
 */
import type { Genotype } from '../search-spaces/genotype.js';
import type { SpaceSpec } from '../search-spaces/spaces.js';
import {
  channelStats,
  defaultAugment,
  evaluationBatches,
  ImageBatcher,
  loadCorpus,
  loadImageDataset,
  splitTrainValid,
  TextBatcher,
  tinySubset,
  type ChannelStats,
  type ImageDataset,
  type ImageDatasetName,
} from './data/index.js';
import { MacroFixedNet } from './fixed/macro.js';
import { MicroFixedNet } from './fixed/micro.js';
import { FixedRnn, RNN_FINAL_TRAINING } from './fixed/rnn.js';
import type { MetricValue } from './channel/index.js';
import { disposeBatch, evaluateAll, type Batch, type StepStats, type TrainableModel } from './model.js';
import type { StoreTensors } from './store.js';
import { cosineLr, REFERENCE_LR } from './optim.js';
import { checkOptionsForSpace, UsageError, type DatasetName, type TrialOptions } from './options.js';
import type { Architecture, Phases } from './outputs.js';
import { MACRO_SEARCH_DEFAULTS, MacroSupernet } from './supernet/macro.js';
import { MICRO_SEARCH_DEFAULTS, MicroSupernet } from './supernet/micro.js';
import { RNN_SEARCH_TRAINING, RNN_SUPERNET_DEFAULTS, RnnSupernet } from './supernet/rnn.js';

/** Text rewards are 80/perplexity (ENAS.md §2), so a good language model scores near 1 like an accurate classifier. */
export const TEXT_REWARD_CONSTANT = 80;

/** Training batch when --batch-size is not given: 64 images (a CPU-sized cut of the reference 128/160), 32 text rows. */
export const DEFAULT_IMAGE_BATCH = 64;
/** The reference's evaluation batch (ENAS.md §1 "eval batch 100"). */
export const DEFAULT_IMAGE_EVAL_BATCH = 100;

/** What scoring measured on some validation batches. */
export interface Score {
  /** Images: accuracy; text: 80/exp(mean cross-entropy). */
  reward: number;
  /** Mean cross-entropy per image or token. */
  loss: number;
  accuracy?: number;
  /** Text: exp(mean cross-entropy). */
  perplexity?: number;
  batches: number;
}

/** `genotype` on `count` validation batches from batch `first` of the walk through the split, or on the whole split (`count` null). */
export interface ScoreRequest {
  genotype: Genotype;
  first: number;
  count: number | null;
}

/** Steps the model through the training data from one global step on. */
export interface Trainer {
  /** One training step of `genotype` on the next batch. */
  step(genotype: Genotype, lr: number): StepStats;
}

export interface Task {
  readonly kind: 'image' | 'text';
  readonly spec: SpaceSpec;
  readonly dataset: DatasetName;
  /** One line for the trial's summary. */
  readonly dataSummary: string;
  readonly batchesPerEpoch: number;
  /**
   * What must match for two runs to share supernet weights; kept in the weight store's meta and
   * compared on load, so a store of another model is refused by name instead of by tensor shapes.
   */
  readonly supernetDescription: Record<string, unknown>;
  /** One line describing a model: its kind and sizes. */
  modelSummary(model: 'supernet' | 'fixed'): string;
  /** The supernet, from the seeded init, or from `initialState` (stored weights, whole state) without computing the init. */
  createSupernet(initialState?: StoreTensors): TrainableModel;
  /** The retrain-time network of `genotype`; `totalSteps` drives the micro drop-path schedule. */
  createFixed(genotype: Genotype, totalSteps: number): TrainableModel;
  /** Training from data position `step` (global step; epoch = ⌊step / batchesPerEpoch⌋). */
  trainer(model: TrainableModel, step: number): Trainer;
  /**
   * One Score per request, in order. All their batches go to the model's `evaluateAll` at once,
   * so a model with replicas (trial/parallel.ts) scores several at a time.
   */
  scoreAll(model: TrainableModel, requests: readonly ScoreRequest[]): Score[];
  /** Scores on `count` validation batches, batch `first` onwards of a shuffled walk through the split. */
  score(model: TrainableModel, genotype: Genotype, first: number, count: number): Score;
  /** Scores on the whole validation split. */
  validate(model: TrainableModel, genotype: Genotype): Score;
  /** Shared mode: the reference search schedule at global step `step` (ENAS.md §3). */
  searchLr(step: number): number;
  /** Scratch mode: the rate for `epoch` of a run of `epochs`. */
  scratchLr(epoch: number, epochs: number): number;
  /** The PERIODICAL value for some training steps: accuracy (text: 80/ppl) as default, and the loss. */
  trainingMetric(steps: readonly StepStats[]): { default: number; loss: number };
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/** How a task scores: the batches of a request, and the Score of their statistics (`examples`: images or tokens per batch). */
function scoring(
  batchesOf: (request: ScoreRequest) => Iterable<Batch>,
  fold: (parts: readonly { stats: StepStats; examples: number }[]) => Score,
): Pick<Task, 'scoreAll' | 'score' | 'validate'> {
  const scoreAll = (model: TrainableModel, requests: readonly ScoreRequest[]): Score[] => {
    const examples: number[] = [];
    const perRequest: number[] = [];
    // Made as the model asks for them, so only the batches in flight exist at once.
    const jobs = function* () {
      for (const request of requests) {
        let count = 0;
        for (const batch of batchesOf(request)) {
          examples.push(batch.y.size);
          count++;
          yield { g: request.genotype, batch };
        }
        perRequest.push(count);
      }
    };
    const stats = evaluateAll(model, jobs());
    let next = 0;
    return perRequest.map((count) => {
      const parts = stats.slice(next, next + count).map((s, i) => ({ stats: s, examples: examples[next + i]! }));
      next += count;
      return fold(parts);
    });
  };
  return {
    scoreAll,
    score: (model, genotype, first, count) => scoreAll(model, [{ genotype, first, count }])[0]!,
    validate: (model, genotype) => scoreAll(model, [{ genotype, first: 0, count: null }])[0]!,
  };
}

/** Builds the task for an architecture of `spec` (macro, micro or rnn); loads the data. */
export function createTask(options: TrialOptions, spec: SpaceSpec): Task {
  const dataset = checkOptionsForSpace(options, spec);
  if (spec.space === 'nb201') throw new UsageError('NAS-Bench-201 architectures have no supernet or network here: use --mode table');
  return spec.space === 'rnn' ? createTextTask(options, spec) : createImageTask(options, spec, dataset as ImageDatasetName);
}

interface ImageData {
  train: ImageDataset;
  valid: ImageDataset;
  stats: ChannelStats;
}

function loadImages(options: TrialOptions, name: ImageDatasetName): ImageData {
  const { train: all } = loadImageDataset(name, options.dataDir);
  const split = splitTrainValid(all, { validFraction: options.validFraction });
  const subset = (ds: ImageDataset) => (options.subset ? tinySubset(ds, options.subset) : ds);
  const train = subset(split.train);
  const valid = subset(split.valid!);
  return { train, valid, stats: channelStats(train) };
}

function createImageTask(options: TrialOptions, spec: SpaceSpec & { space: 'macro' | 'micro' }, dataset: ImageDatasetName): Task {
  const { train, valid, stats } = loadImages(options, dataset);
  const batchSize = options.batchSize ?? DEFAULT_IMAGE_BATCH;
  const evalBatchSize = Math.min(options.evalBatchSize ?? DEFAULT_IMAGE_EVAL_BATCH, valid.count);
  const inputShape: [number, number, number] = [train.height, train.width, train.channels];
  const numClasses = train.classes;
  const micro = spec.space === 'micro';
  const channels = options.channels ?? (micro ? MICRO_SEARCH_DEFAULTS.channels : MACRO_SEARCH_DEFAULTS.channels);
  const layers = micro ? (options.layers ?? MICRO_SEARCH_DEFAULTS.layers) : spec.layers;
  const common = { inputShape, numClasses, channels, seed: options.seed, initScale: options.initScale };
  const { weightSharing, gradClip } = options;
  const trainBatcher = new ImageBatcher(train, { batchSize, stats, seed: options.seed, augment: defaultAugment(dataset) });
  // Full batches only, so every reward is measured on the same number of images.
  const validBatcher = new ImageBatcher(valid, { batchSize: evalBatchSize, stats, seed: options.seed, partial: 'drop' });
  const searchSchedule = micro ? REFERENCE_LR.microSearch : REFERENCE_LR.macroSearch;
  const finalSchedule = micro ? REFERENCE_LR.microFinal : REFERENCE_LR.macroFinal;

  const imageScoring = scoring(
    function* ({ first, count }) {
      if (count === null) {
        yield* evaluationBatches(valid, stats, evalBatchSize);
        return;
      }
      const perEpoch = validBatcher.batchesPerEpoch;
      validBatcher.seek({ epoch: Math.floor(first / perEpoch), position: first % perEpoch });
      for (let i = 0; i < count; i++) yield validBatcher.next();
    },
    (parts) => {
      const images = parts.reduce((n, p) => n + p.examples, 0);
      const weighted = (value: (stats: StepStats) => number) => parts.reduce((sum, p) => sum + value(p.stats) * p.examples, 0) / images;
      const accuracy = weighted((s) => s.accuracy!);
      return { reward: accuracy, accuracy, loss: weighted((s) => s.loss), batches: parts.length };
    },
  );

  const cells = micro ? `${layers + 2} cells of ${spec.nodes} nodes` : `${layers} layers`;
  return {
    kind: 'image',
    spec,
    dataset,
    dataSummary:
      `${dataset}${options.subset ? ` (subset: ${options.subset} per class)` : ''}: ${train.count} training / ${valid.count} validation images ` +
      `${inputShape.join('×')}, batch ${batchSize}, scoring batch ${evalBatchSize}`,
    batchesPerEpoch: trainBatcher.batchesPerEpoch,
    supernetDescription: { model: `${spec.space} supernet`, spec, inputShape, numClasses, channels, layers, dataset, weightSharing, initScale: options.initScale, gradClip: gradClip ?? null },
    modelSummary: (model) => `${spec.space} ${model === 'supernet' ? 'supernet' : 'network'}, C=${channels}, ${cells}`,
    createSupernet: (initialState) =>
      micro
        ? new MicroSupernet({ ...common, layers, nodes: spec.nodes, weightSharing, gradClip, initialState })
        : new MacroSupernet({ ...common, layers, weightSharing, gradClip, initialState }),
    createFixed: (genotype, totalSteps) => {
      if (genotype.space === 'micro') return new MicroFixedNet(genotype, { ...common, layers, totalSteps });
      if (genotype.space === 'macro') return new MacroFixedNet(genotype, common);
      throw new Error(`internal: a ${genotype.space} genotype in an image task`);
    },
    trainer: (model, step) => {
      trainBatcher.seek({ epoch: Math.floor(step / trainBatcher.batchesPerEpoch), position: step % trainBatcher.batchesPerEpoch });
      return {
        step: (genotype, lr) => {
          const batch = trainBatcher.next();
          try {
            return model.trainStep(genotype, batch, lr);
          } finally {
            disposeBatch(batch);
          }
        },
      };
    },
    ...imageScoring,
    searchLr: (step) => cosineLr(Math.floor(step / trainBatcher.batchesPerEpoch), searchSchedule),
    // One cosine period over the whole run: the reference's restarts every 10, 20, … epochs suit its 630 epochs, not a short retraining.
    scratchLr: (epoch, epochs) => cosineLr(epoch, { ...finalSchedule, t0: epochs, tMul: 1 }),
    trainingMetric: (steps) => ({ default: mean(steps.map((s) => s.accuracy!)), loss: mean(steps.map((s) => s.loss)) }),
  };
}

function createTextTask(options: TrialOptions, spec: SpaceSpec & { space: 'rnn' }): Task {
  if (!options.dataDir)
    throw new UsageError('--dataset ptb needs --data-dir: a directory of <prefix>.{train,valid,test}.txt in Penn Treebank form (e.g. ../shared/data/kjv-ptb)');
  const corpus = loadCorpus(options.dataDir);
  const cut = (tokens: Int32Array) => (options.subset ? tokens.subarray(0, options.subset) : tokens);
  const train = cut(corpus.train);
  const valid = cut(corpus.valid);
  const batchSize = options.batchSize ?? RNN_SEARCH_TRAINING.batchSize;
  const evalBatchSize = options.evalBatchSize ?? batchSize;
  const hiddenSize = options.hidden ?? RNN_SUPERNET_DEFAULTS.hiddenSize;
  const vocabSize = corpus.vocab.length;
  const trainBatcher = new TextBatcher(train, batchSize, options.bptt);
  const validBatcher = new TextBatcher(valid, evalBatchSize, options.bptt);
  const common = { vocabSize, hiddenSize, seed: options.seed };

  const textScoring = scoring(
    function* ({ first, count }) {
      const perEpoch = validBatcher.windowsPerEpoch;
      for (let i = 0; i < (count ?? perEpoch); i++) yield validBatcher.window(count === null ? i : (first + i) % perEpoch);
    },
    (parts) => {
      const loss = mean(parts.map((p) => p.stats.loss));
      const perplexity = Math.exp(loss);
      return { reward: TEXT_REWARD_CONSTANT / perplexity, loss, perplexity, batches: parts.length };
    },
  );

  return {
    kind: 'text',
    spec,
    dataset: 'ptb',
    dataSummary:
      `text from ${options.dataDir}${options.subset ? ` (subset: ${options.subset} tokens per split)` : ''}: ${train.length} training / ` +
      `${valid.length} validation tokens, vocabulary ${vocabSize}, batch ${batchSize}×${options.bptt}, scoring batch ${evalBatchSize}×${options.bptt}`,
    batchesPerEpoch: trainBatcher.windowsPerEpoch,
    supernetDescription: { model: 'rnn supernet', spec, vocabSize, hiddenSize, dataset: 'ptb' },
    modelSummary: (model) => `rnn ${model === 'supernet' ? 'supernet' : 'network'}, H=${hiddenSize}, ${spec.nodes} nodes, vocabulary ${vocabSize}`,
    createSupernet: (initialState) => new RnnSupernet({ ...common, nodes: spec.nodes, activations: spec.ops, initialState }),
    createFixed: (genotype) => {
      if (genotype.space !== 'rnn') throw new Error(`internal: a ${genotype.space} genotype in a text task`);
      return new FixedRnn(genotype, common);
    },
    trainer: (model, step) => {
      const perEpoch = trainBatcher.windowsPerEpoch;
      trainBatcher.seek({ epoch: Math.floor(step / perEpoch), position: step % perEpoch });
      // The hidden state is carried from window to window and zeroed at each epoch start
      // (ENAS.md §3); a trial starts from zero, since the state is not shared through the store.
      model.resetState?.();
      return {
        step: (genotype, lr) => {
          if (trainBatcher.position === 0) model.resetState?.();
          const batch = trainBatcher.next();
          try {
            return model.trainStep(genotype, batch, lr);
          } finally {
            disposeBatch(batch);
          }
        },
      };
    },
    ...textScoring,
    // Constant, as LM's search and as the supernet's authors recommend (trial/supernet/rnn.ts).
    searchLr: () => RNN_SEARCH_TRAINING.learningRate,
    scratchLr: () => RNN_FINAL_TRAINING.learningRate,
    trainingMetric: (steps) => {
      const loss = mean(steps.map((s) => s.loss));
      return { default: TEXT_REWARD_CONSTANT / Math.exp(loss), loss };
    },
  };
}

/** Where a run's metrics go: NNI's trial channel (trial/channel), or an in-process runner's bookkeeping. */
export interface MetricSink {
  reportIntermediate(value: MetricValue): Promise<void>;
  reportFinal(value: MetricValue): Promise<void>;
}

/** What every mode runs with besides the task. */
export interface RunContext {
  options: TrialOptions;
  architecture: Architecture;
  metrics: MetricSink;
  /** A line of the human-readable summary (stdout under NNI: the trial's log tab). */
  print: (line: string) => void;
  phases: Phases;
  /**
   * Writes the architecture files into the trial's output directory. A mode calls it once its
   * inputs (table, data, store) have loaded, so a trial refused for bad input writes nothing.
   */
  recordArchitecture: () => void;
}
