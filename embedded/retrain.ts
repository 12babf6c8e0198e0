/*
 * Retraining a derived architecture from scratch (ENAS.md §4) with the reference's final recipe
 * (the "final" columns of ENAS.md's tables), scaled by a preset and flags: the fixed network
 * (trial/fixed/*) trained on the whole training set (images: train + valid, as E's final runs;
 * text: the training split, as E's ptb_final, which watches valid), scored on the test set, and
 * exported (embedded/export.ts). Checkpoints every epoch and on Ctrl-C, like the search.
 *
 * The retrain directory: retrain.json (settings), history.jsonl (one line per epoch),
 * checkpoint/, result.json, and the export: model.json, weights.bin, architecture.json/.svg.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '../common/random.js';
import { writeFileAtomic } from '../common/files.js';
import { compileChecker } from '../common/validate.js';
import type { Genotype } from '../search-spaces/genotype.js';
import { decisions, fromTokens, toTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import type { BackendName } from '../trial/backend.js';
import {
  channelStats,
  defaultAugment,
  evaluationBatches,
  ImageBatcher,
  loadCorpus,
  loadImageDataset,
  TextBatcher,
  tinySubset,
  type ImageDatasetName,
} from '../trial/data/index.js';
import { MACRO_FINAL_DEFAULTS } from '../trial/fixed/macro.js';
import { MICRO_FINAL_DEFAULTS } from '../trial/fixed/micro.js';
import { FIXED_RNN_DEFAULTS, RNN_FINAL_TRAINING } from '../trial/fixed/rnn.js';
import { disposeBatch, type Batch, type StepStats, type TrainableModel } from '../trial/model.js';
import { cosineLr, REFERENCE_LR } from '../trial/optim.js';
import { architectureLines } from '../trial/outputs.js';
import { TEXT_REWARD_CONSTANT } from '../trial/task.js';
import type { DataChoice } from './architectures.js';
import { CHECKPOINT_DIR, hasCheckpoint, readCheckpoint, restoreModel, saveCheckpoint } from './checkpoint.js';
import { createFixedModel, exportModel, type FixedModelConfig, type Preprocessing } from './export.js';
import { HistoryLog } from './history.js';
import { nextTick, type StopRequest } from './interrupt.js';
import type { PresetName, RetrainRecipe, TrainableSpace } from './presets.js';
import { count, EtaEstimator, formatDuration, type ProgressLine } from './progress.js';

export const RETRAIN_SETTINGS_FILE = 'retrain.json';
export const RESULT_FILE = 'result.json';
const RETRAIN_FORMAT = 'nni-enas-retrain/1';

export interface RetrainSettings {
  format: typeof RETRAIN_FORMAT;
  /** The architecture file it came from. */
  arch: string;
  spec: SpaceSpec & { space: TrainableSpace };
  genotype: Genotype;
  /** Set when the architecture was drawn uniformly at random (the paper's baseline, ENAS.md §4) with this seed. */
  randomSeed: number | null;
  data: DataChoice;
  preset: PresetName;
  recipe: RetrainRecipe;
  seed: number;
  backend: BackendName | null;
}

/** A uniformly random architecture of `spec`: every decision drawn independently and uniformly. */
export function randomArchitecture(spec: SpaceSpec, seed: number): Genotype {
  const random = new Random(seed);
  return fromTokens(spec, decisions(spec).map((d) => random.int(d.choices.length)));
}

interface EpochLine {
  type: 'epoch';
  epoch: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number | null;
  seconds: number;
}

/** Where a retraining stands; saved with every checkpoint. */
interface RetrainState {
  /** Epochs completed. */
  epoch: number;
  /** Training steps taken: the data position. */
  step: number;
  sums: { loss: number; accuracy: number; steps: number };
  seconds: number;
  historyLines: number;
}

const checkState = compileChecker<RetrainState>(
  {
    type: 'object',
    properties: {
      epoch: { type: 'integer', minimum: 0 },
      step: { type: 'integer', minimum: 0 },
      sums: {
        type: 'object',
        properties: { loss: { type: 'number' }, accuracy: { type: 'number' }, steps: { type: 'integer', minimum: 0 } },
        required: ['loss', 'accuracy', 'steps'],
        additionalProperties: false,
      },
      seconds: { type: 'number', minimum: 0 },
      historyLines: { type: 'integer', minimum: 0 },
    },
    required: ['epoch', 'step', 'sums', 'seconds', 'historyLines'],
    additionalProperties: false,
  },
  'retraining checkpoint state',
);

/** What the test set said. */
export interface TestScore {
  loss: number;
  accuracy: number | null;
  perplexity: number | null;
  examples: number;
}

/** The data side of a retraining: batches, test scoring, and what the network's input needs. */
interface RetrainData {
  kind: 'image' | 'text';
  summary: string;
  batchesPerEpoch: number;
  model: FixedModelConfig;
  preprocessing: Preprocessing;
  /** Steps the model through the training data from global step `step` on. */
  trainer(model: TrainableModel, genotype: Genotype, step: number): (lr: number) => StepStats;
  test(model: TrainableModel, genotype: Genotype): TestScore;
  /** The learning rate of `epoch` (0-based). */
  lr(epoch: number): number;
}

/** One training step on `batch`, which is freed afterwards. */
function trainOn(network: TrainableModel, genotype: Genotype, batch: Batch, lr: number): StepStats {
  try {
    return network.trainStep(genotype, batch, lr);
  } finally {
    disposeBatch(batch);
  }
}

function imageData(settings: RetrainSettings): RetrainData {
  const { recipe, spec } = settings;
  const dataset = settings.data.dataset as ImageDatasetName;
  const splits = loadImageDataset(dataset, settings.data.dataDir ?? undefined);
  const cut = (ds: typeof splits.train) => (recipe.subset ? tinySubset(ds, recipe.subset) : ds);
  // Final training uses the whole training set, the validation tail included (ENAS.md §3).
  const train = cut(splits.train);
  const test = cut(splits.test);
  const stats = channelStats(train);
  const augment = { ...defaultAugment(dataset), cutout: recipe.cutout };
  const batcher = new ImageBatcher(train, { batchSize: recipe.batchSize, stats, seed: settings.seed, augment });
  const inputShape: [number, number, number] = [train.height, train.width, train.channels];
  const totalSteps = recipe.epochs * batcher.batchesPerEpoch;
  const common = { inputShape, numClasses: train.classes, seed: settings.seed };
  const micro = spec.space === 'micro';
  const model: FixedModelConfig = micro
    ? {
        space: 'micro',
        config: {
          ...MICRO_FINAL_DEFAULTS,
          ...common,
          channels: recipe.channels ?? MICRO_FINAL_DEFAULTS.channels,
          layers: recipe.cells ?? MICRO_FINAL_DEFAULTS.layers,
          auxHead: recipe.auxHead,
          dropPathKeep: recipe.dropPathKeep,
          totalSteps,
        },
      }
    : { space: 'macro', config: { ...MACRO_FINAL_DEFAULTS, ...common, channels: recipe.channels ?? MACRO_FINAL_DEFAULTS.channels } };
  // One cosine period over the whole run: the reference's restarts (10, 20, 40, …) suit its 630 epochs, not a short retraining.
  const schedule = { ...(micro ? REFERENCE_LR.microFinal : REFERENCE_LR.macroFinal), t0: recipe.epochs, tMul: 1 };
  return {
    kind: 'image',
    summary:
      `${dataset}${recipe.subset ? ` (subset: ${recipe.subset} per class)` : ''}: ${train.count} training (train + valid) / ${test.count} test images, ` +
      `batch ${recipe.batchSize}, augmentation pad ${augment.pad}${augment.flip ? ' + flip' : ''}${augment.cutout ? ` + cutout ${augment.cutout}` : ''}`,
    batchesPerEpoch: batcher.batchesPerEpoch,
    model,
    preprocessing: { kind: 'image', stats },
    trainer: (network, genotype, step) => {
      batcher.seek({ epoch: Math.floor(step / batcher.batchesPerEpoch), position: step % batcher.batchesPerEpoch });
      return (lr) => trainOn(network, genotype, batcher.next(), lr);
    },
    test: (network, genotype) => {
      let loss = 0;
      let correct = 0;
      for (const batch of evaluationBatches(test, stats, recipe.evalBatchSize)) {
        const n = batch.y.shape[0]!;
        const stats = network.evaluate(genotype, batch);
        disposeBatch(batch);
        loss += stats.loss * n;
        correct += stats.accuracy! * n;
      }
      return { loss: loss / test.count, accuracy: correct / test.count, perplexity: null, examples: test.count };
    },
    lr: (epoch) => cosineLr(epoch, schedule),
  };
}

/** E's ptb_final: lr 20, ×0.9991 per epoch from epoch 14 (ENAS.md PTB table). */
const TEXT_FINAL_DECAY = { factor: 0.9991, fromEpoch: 14 };

function textData(settings: RetrainSettings): RetrainData {
  const { recipe } = settings;
  if (!settings.data.dataDir) throw new Error('text retraining needs --data-dir: a directory of <prefix>.{train,valid,test}.txt (e.g. ../shared/data/kjv-ptb)');
  const corpus = loadCorpus(settings.data.dataDir);
  const cut = (tokens: Int32Array) => (recipe.subset ? tokens.subarray(0, recipe.subset) : tokens);
  const train = cut(corpus.train);
  const test = cut(corpus.test);
  const bptt = RNN_FINAL_TRAINING.bpttSteps;
  const batcher = new TextBatcher(train, recipe.batchSize, bptt);
  const testBatcher = new TextBatcher(test, recipe.evalBatchSize, bptt);
  const model: FixedModelConfig = {
    space: 'rnn',
    config: { ...FIXED_RNN_DEFAULTS, vocabSize: corpus.vocab.length, hiddenSize: recipe.hidden ?? FIXED_RNN_DEFAULTS.hiddenSize, seed: settings.seed },
  };
  return {
    kind: 'text',
    summary:
      `text from ${settings.data.dataDir}${recipe.subset ? ` (subset: ${recipe.subset} tokens per split)` : ''}: ${train.length} training / ${test.length} test tokens, ` +
      `vocabulary ${corpus.vocab.length}, batch ${recipe.batchSize}×${bptt}`,
    batchesPerEpoch: batcher.windowsPerEpoch,
    model,
    preprocessing: { kind: 'text', vocabulary: corpus.vocab },
    trainer: (network, genotype, step) => {
      batcher.seek({ epoch: Math.floor(step / batcher.windowsPerEpoch), position: step % batcher.windowsPerEpoch });
      // The hidden state runs on from window to window and restarts at zero each epoch (ENAS.md §3).
      network.resetState?.();
      return (lr) => {
        if (batcher.position === 0) network.resetState?.();
        return trainOn(network, genotype, batcher.next(), lr);
      };
    },
    test: (network, genotype) => {
      let loss = 0;
      for (let i = 0; i < testBatcher.windowsPerEpoch; i++) {
        const batch = testBatcher.window(i);
        loss += network.evaluate(genotype, batch).loss;
        disposeBatch(batch);
      }
      const mean = loss / testBatcher.windowsPerEpoch;
      return { loss: mean, accuracy: null, perplexity: Math.exp(mean), examples: testBatcher.windowsPerEpoch * recipe.evalBatchSize * bptt };
    },
    lr: (epoch) => RNN_FINAL_TRAINING.learningRate * TEXT_FINAL_DECAY.factor ** Math.max(0, epoch + 1 - TEXT_FINAL_DECAY.fromEpoch),
  };
}

export function writeRetrainSettings(dir: string, settings: RetrainSettings): void {
  writeFileAtomic(join(dir, RETRAIN_SETTINGS_FILE), `${JSON.stringify(settings, null, 2)}\n`);
}

export function readRetrainSettings(dir: string): RetrainSettings {
  const path = join(dir, RETRAIN_SETTINGS_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no retraining here (${RETRAIN_SETTINGS_FILE} missing)`);
  const settings = JSON.parse(readFileSync(path, 'utf8')) as RetrainSettings;
  if (settings.format !== RETRAIN_FORMAT) throw new Error(`${path}: format ${JSON.stringify(settings.format)}, expected "${RETRAIN_FORMAT}"`);
  // Checks the genotype against its space.
  fromTokens(settings.spec, toTokens(settings.genotype, settings.spec));
  return settings;
}

export interface RetrainIo {
  print(line: string): void;
  progress: ProgressLine;
  stop: StopRequest;
}

export interface RetrainOutcome {
  finished: boolean;
  epochs: number;
  test: TestScore | null;
  /** Trainable parameters of the network (aux head included, optimizer slots not). */
  parameters: number;
  files: string[];
}

/** Counts the trainable weights: what a paper's "params" column counts. */
function parameterCount(model: TrainableModel): number {
  let total = 0;
  for (const variable of model.state.values()) if (variable.trainable) total += variable.size;
  return total;
}

/** Trains (or resumes) the retraining in `dir`; see the file comment. */
export async function runRetrain(dir: string, settings: RetrainSettings, resume: boolean, io: RetrainIo): Promise<RetrainOutcome> {
  const data = settings.spec.space === 'rnn' ? textData(settings) : imageData(settings);
  const { genotype, recipe } = settings;
  const model = createFixedModel(genotype, data.model);
  const description = { model: data.model, genotype, data: settings.data, recipe };
  const checkpointDir = join(dir, CHECKPOINT_DIR);
  try {
    let state: RetrainState;
    let history: HistoryLog<EpochLine>;
    if (resume) {
      if (!hasCheckpoint(checkpointDir)) throw new Error(`${dir}: no retraining checkpoint to resume`);
      const checkpoint = readCheckpoint<RetrainState>(checkpointDir, 'retrain', description);
      restoreModel(model, checkpoint);
      state = checkState(checkpoint.meta.state);
      history = HistoryLog.resume<EpochLine>(dir, state.historyLines);
      io.print(`resuming ${dir}: ${state.epoch} of ${count(recipe.epochs, 'epoch')} done, step ${state.step}`);
    } else {
      writeRetrainSettings(dir, settings);
      state = { epoch: 0, step: 0, sums: { loss: 0, accuracy: 0, steps: 0 }, seconds: 0, historyLines: 0 };
      history = HistoryLog.create<EpochLine>(dir);
    }
    const parameters = parameterCount(model);
    io.print(`data: ${data.summary}`);
    io.print(
      `model: ${settings.spec.space} network, ${(parameters / 1e6).toFixed(3)}M parameters; ${count(recipe.epochs, 'epoch')} of ${count(data.batchesPerEpoch, 'step')}` +
        (settings.spec.space === 'micro'
          ? `, C=${recipe.channels}, ${recipe.cells}+2 cells, aux head ${recipe.auxHead ? 'on' : 'off'}, drop-path keep ${recipe.dropPathKeep}`
          : ''),
    );
    io.print('architecture:');
    for (const line of architectureLines(genotype)) io.print(`  ${line}`);

    const processStart = performance.now();
    const secondsBefore = state.seconds;
    const seconds = () => secondsBefore + (performance.now() - processStart) / 1000;
    const checkpoint = async () => {
      state.seconds = seconds();
      state.historyLines = history.lines;
      await saveCheckpoint(checkpointDir, 'retrain', description, model, state);
    };
    if (!resume) await checkpoint();
    const eta = new EtaEstimator<'step'>();
    const step = data.trainer(model, genotype, state.step);
    const perEpoch = data.batchesPerEpoch;
    let smoothLoss: number | undefined;
    while (state.epoch < recipe.epochs) {
      const lr = data.lr(state.epoch);
      while (state.step < (state.epoch + 1) * perEpoch) {
        if (io.stop.requested) {
          await checkpoint();
          io.progress.close();
          return { finished: false, epochs: state.epoch, test: null, parameters, files: [] };
        }
        const started = performance.now();
        const stats = step(lr);
        if (!Number.isFinite(stats.loss))
          throw new Error(
            `training diverged: loss ${stats.loss} at epoch ${state.epoch + 1}, step ${state.step - state.epoch * perEpoch + 1} (lr ${lr}); ` +
              `the checkpoint holds the network before epoch ${state.epoch + 1}`,
          );
        state.step++;
        state.sums.steps++;
        state.sums.loss += stats.loss;
        state.sums.accuracy += stats.accuracy ?? 0;
        eta.record('step', (performance.now() - started) / 1000);
        smoothLoss = smoothLoss === undefined ? stats.loss : 0.9 * smoothLoss + 0.1 * stats.loss;
        const left = eta.eta({ step: recipe.epochs * perEpoch - state.step });
        io.progress.update({
          label: `epoch ${state.epoch + 1}/${recipe.epochs} step ${state.step - state.epoch * perEpoch}/${perEpoch}`,
          fraction: state.step / (recipe.epochs * perEpoch),
          etaSeconds: left?.seconds ?? null,
          stats: `lr ${lr.toPrecision(3)} loss ${smoothLoss.toFixed(4)} ${formatDuration(seconds())} in`,
        });
        await nextTick();
      }
      const { sums } = state;
      const line: EpochLine = {
        type: 'epoch',
        epoch: state.epoch + 1,
        lr,
        trainLoss: sums.loss / sums.steps,
        trainAccuracy: data.kind === 'image' ? sums.accuracy / sums.steps : null,
        seconds: seconds(),
      };
      history.append(line);
      io.print(
        `epoch ${line.epoch}/${recipe.epochs}: lr ${lr.toPrecision(3)}, train loss ${line.trainLoss.toFixed(4)}` +
          (line.trainAccuracy === null ? '' : `, accuracy ${line.trainAccuracy.toFixed(4)}`) +
          ` | ${formatDuration(line.seconds)}`,
      );
      state.epoch++;
      state.sums = { loss: 0, accuracy: 0, steps: 0 };
      await checkpoint();
    }
    io.progress.close();

    const test = data.test(model, genotype);
    const result = {
      test: { ...test, ...(test.perplexity !== null && { reward: TEXT_REWARD_CONSTANT / test.perplexity }) },
      epochs: state.epoch,
      parameters,
      seconds: seconds(),
      arch: settings.arch,
      randomSeed: settings.randomSeed,
      recipe,
    };
    writeFileAtomic(join(dir, RESULT_FILE), `${JSON.stringify(result, null, 2)}\n`);
    const files = await exportModel(dir, model, genotype, settings.spec, data.preprocessing, {
      recipe,
      epochs: state.epoch,
      seed: settings.seed,
      data: settings.data,
      test,
      parameters,
    });
    return { finished: true, epochs: state.epoch, test, parameters, files: [join(dir, RESULT_FILE), ...files] };
  } finally {
    model.dispose();
  }
}
