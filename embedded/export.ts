/*
 * A retrained network as files TensorFlow.js users know: model.json, a manifest in tfjs's
 * weights-manifest shape (`weightsManifest: [{paths, weights: [{name, shape, dtype}]}]`) plus our
 * architecture, model config and input preprocessing, and weights.bin, the tensors back to back
 * (tf.io.encodeWeights / decodeWeights). architecture.json and .svg sit beside them. There is no
 * tfjs-layers topology: the network is ours (trial/fixed/*), so `loadExportedModel` rebuilds it
 * from the architecture and config and then assigns the weights.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tf = require('@tensorflow/tfjs-core');
import { writeFileAtomic } from '../common/files.js';
import { drawGenotype } from '../search-spaces/draw.js';
import type { Genotype, MacroGenotype, MicroGenotype, RnnGenotype } from '../search-spaces/genotype.js';
import { fromTokens, toParams, toTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import type { ImageClassifier } from '../trial/cnn.js';
import { normalizationTable, type ChannelStats } from '../trial/data/index.js';
import { MacroFixedNet, type MacroFixedConfig } from '../trial/fixed/macro.js';
import { MicroFixedNet, type MicroFixedConfig } from '../trial/fixed/micro.js';
import { FixedRnn, type FixedRnnConfig } from '../trial/fixed/rnn.js';
import type { Batch, StepStats, TrainableModel } from '../trial/model.js';
import { onBackend } from '../trial/nn.js';
import { HostTensor } from '../trial/optim.js';
import { assignState } from '../trial/store-tf.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const ARCHITECTURE_JSON = 'architecture.json';
export const ARCHITECTURE_SVG = 'architecture.svg';
const MODEL_FORMAT = 'nni-enas-model/1';
/** Images per forward pass in predictClasses: the reference's evaluation batch (ENAS.md §1). */
const PREDICT_BATCH = 100;

/** A fixed network's full configuration, enough to build it again. */
export type FixedModelConfig =
  | { space: 'micro'; config: MicroFixedConfig }
  | { space: 'macro'; config: MacroFixedConfig }
  | { space: 'rnn'; config: FixedRnnConfig };

/** What turns raw data into model input: per-channel statistics (images) or the vocabulary (text). */
export type Preprocessing = { kind: 'image'; stats: ChannelStats } | { kind: 'text'; vocabulary: string[] };

/** Builds the fixed network of `genotype` (trial/fixed/*) from a full configuration. */
export function createFixedModel(genotype: Genotype, model: FixedModelConfig): TrainableModel {
  if (genotype.space !== model.space) throw new Error(`a ${genotype.space} architecture cannot build a ${model.space} network`);
  switch (model.space) {
    case 'micro':
      return new MicroFixedNet(genotype as MicroGenotype, model.config);
    case 'macro':
      return new MacroFixedNet(genotype as MacroGenotype, model.config);
    case 'rnn':
      return new FixedRnn(genotype as RnnGenotype, model.config);
  }
}

/** The full configuration a fixed network was built with. */
export function fixedModelConfig(model: TrainableModel): FixedModelConfig {
  if (model instanceof MicroFixedNet) return { space: 'micro', config: model.config };
  if (model instanceof MacroFixedNet) return { space: 'macro', config: model.config };
  if (model instanceof FixedRnn) return { space: 'rnn', config: { ...model.config } };
  throw new Error('only fixed networks (trial/fixed/*) can be exported');
}

/**
 * Optimizer slots (NesterovMomentum's `<weight>/momentum`) are training state, not the model:
 * inference needs the weights and batch-norm statistics only.
 */
const isExported = (name: string): boolean => !name.endsWith('/momentum');

interface ModelJson {
  format: typeof MODEL_FORMAT;
  generatedBy: string;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  architecture: { spec: SpaceSpec; genotype: Genotype; parameters: Record<string, unknown>; tokens: number[] };
  model: FixedModelConfig;
  preprocessing: Preprocessing;
  /** How it was trained and what it scored (free-form, for the reader). */
  training: Record<string, unknown>;
}

/** Writes model.json, weights.bin, architecture.json and architecture.svg into `dir`; returns their paths. */
export async function exportModel(
  dir: string,
  model: TrainableModel,
  genotype: Genotype,
  spec: SpaceSpec,
  preprocessing: Preprocessing,
  training: Record<string, unknown>,
): Promise<string[]> {
  // Optimizer slots (HostTensors, named …/momentum) are not part of an exported model.
  const named = [...model.state].flatMap(([name, tensor]) => (isExported(name) && !(tensor instanceof HostTensor) ? [{ name, tensor: onBackend(tensor) }] : []));
  const { data, specs } = await tf.io.encodeWeights(named);
  const architecture = { spec, genotype, parameters: toParams(genotype, spec), tokens: toTokens(genotype, spec) };
  const manifest: ModelJson = {
    format: MODEL_FORMAT,
    generatedBy: 'nni-enas retrain',
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: specs }],
    architecture,
    model: fixedModelConfig(model),
    preprocessing,
    training,
  };
  const paths = [MODEL_JSON, WEIGHTS_BIN, ARCHITECTURE_JSON, ARCHITECTURE_SVG].map((file) => join(dir, file));
  writeFileAtomic(paths[1]!, new Uint8Array(data as ArrayBuffer));
  writeFileAtomic(paths[0]!, `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileAtomic(paths[2]!, `${JSON.stringify(architecture, null, 2)}\n`);
  writeFileAtomic(paths[3]!, drawGenotype(genotype));
  return paths;
}

/** A network loaded from an export, ready to predict. */
export interface ExportedModel {
  readonly genotype: Genotype;
  readonly spec: SpaceSpec;
  readonly preprocessing: Preprocessing;
  /** The rebuilt network (trial/fixed/*) with the exported weights. */
  readonly network: TrainableModel;
  /** Images: class scores [B, classes] of normalised images [B, H, W, C]. */
  logits(x: tf.Tensor4D): tf.Tensor2D;
  /** Images: the predicted class of each raw image (bytes 0..255, N·H·W·C), normalised as in training. */
  predictClasses(pixels: Uint8Array, count: number): Int32Array;
  /** Loss (and images: accuracy) of a batch, as during training's evaluation. */
  evaluate(batch: Batch): StepStats;
  dispose(): void;
}

/** Loads what `exportModel` wrote into `dir`. */
export function loadExportedModel(dir: string): ExportedModel {
  const path = join(dir, MODEL_JSON);
  let manifest: ModelJson;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as ModelJson;
  } catch (error) {
    throw new Error(`${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no exported model here' : (error as Error).message}`);
  }
  if (manifest.format !== MODEL_FORMAT) throw new Error(`${path}: format ${JSON.stringify(manifest.format)}, expected "${MODEL_FORMAT}"`);
  const { spec } = manifest.architecture;
  // A round trip through the tokens checks the genotype against its space.
  const genotype = fromTokens(spec, toTokens(manifest.architecture.genotype, spec));
  const network = createFixedModel(genotype, manifest.model);
  try {
    const groups = manifest.weightsManifest;
    const bytes = Buffer.concat(groups.flatMap((group) => group.paths.map((file) => readFileSync(join(dir, file)))));
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const tensors = tf.io.decodeWeights(buffer, groups.flatMap((group) => group.weights));
    const expected = [...network.state.keys()].filter(isExported);
    const missing = expected.filter((name) => !(name in tensors));
    const unknown = Object.keys(tensors).filter((name) => !network.state.has(name));
    if (missing.length || unknown.length)
      throw new Error(`${path}: weights do not fit the network (missing ${missing.slice(0, 3).join(', ') || 'none'}; unknown ${unknown.slice(0, 3).join(', ') || 'none'})`);
    for (const name of expected) {
      const variable = network.state.get(name)!;
      const value = tensors[name]!;
      if (JSON.stringify(value.shape) !== JSON.stringify(variable.shape))
        throw new Error(`${path}: weight ${name} has shape [${value.shape}], the network needs [${variable.shape}]`);
      assignState(variable, value.dataSync<'float32' | 'int32'>());
    }
    tf.dispose(Object.values(tensors));
  } catch (error) {
    network.dispose();
    throw error;
  }
  const classifier = (): ImageClassifier<Genotype> => {
    if (manifest.preprocessing.kind !== 'image') throw new Error('this exported model is a language model; it has no class scores');
    return network as unknown as ImageClassifier<Genotype>;
  };
  /**
   * A pass over thousands of images at once would keep their activations until its end and fill
   * wasm's 4 GB heap (measured: a C=12 micro network fails between 700 and 800 images; tfjs-wasm
   * does not check malloc and traps with "memory access out of bounds"), so larger inputs go
   * through in PREDICT_BATCH slices.
   */
  const logits = (x: tf.Tensor4D): tf.Tensor2D => {
    const count = x.shape[0];
    if (count <= PREDICT_BATCH) return classifier().logits(genotype, x);
    const parts: tf.Tensor2D[] = [];
    for (let start = 0; start < count; start += PREDICT_BATCH)
      parts.push(tf.tidy(() => classifier().logits(genotype, tf.slice(x, start, Math.min(PREDICT_BATCH, count - start)))));
    const all = tf.concat(parts);
    tf.dispose(parts);
    return all;
  };
  return {
    genotype,
    spec,
    preprocessing: manifest.preprocessing,
    network,
    logits,
    predictClasses(pixels, count) {
      const preprocessing = manifest.preprocessing;
      if (preprocessing.kind !== 'image') throw new Error('this exported model is a language model; it has no classes');
      const table = normalizationTable(preprocessing.stats);
      const channels = preprocessing.stats.mean.length;
      const [height, width] = (manifest.model.config as MicroFixedConfig | MacroFixedConfig).inputShape;
      const size = height * width * channels;
      if (pixels.length !== count * size) throw new Error(`${pixels.length} pixel values are not ${count} images of ${height}×${width}×${channels}`);
      const classes = new Int32Array(count);
      // Normalised slice by slice, so the float copy of the images is never whole either.
      for (let start = 0; start < count; start += PREDICT_BATCH) {
        const n = Math.min(PREDICT_BATCH, count - start);
        const x = Float32Array.from(pixels.subarray(start * size, (start + n) * size), (v, i) => table[(i % channels) * 256 + v]!);
        classes.set(tf.tidy(() => tf.argMax(logits(tf.tensor4d(x, [n, height, width, channels])), 1).dataSync() as Int32Array), start);
      }
      return classes;
    },
    evaluate: (batch) => network.evaluate(genotype, batch),
    dispose: () => network.dispose(),
  };
}
