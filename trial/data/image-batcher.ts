/*
 * Image minibatches: shuffled and augmented for training, in order and plain for evaluation.
 * Every random choice comes from a generator keyed by (seed, epoch, batch), so a batcher can jump
 * to any position and yield exactly the batch an uninterrupted run would have (resume).
 * Batches are built in plain typed arrays; tensors are made only in `next()`, and callers
 * dispose them.
 */
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../../common/random.js';
import type { Batch } from '../model.js';
import { augmentImage, checkAugment, drawAugment, type AugmentOptions } from './augment.js';
import { normalizationTable, type ChannelStats } from './normalize.js';
import { advance, checkPosition, type BatcherPosition } from './position.js';
import type { ImageDataset } from './types.js';

/** An image batch before it becomes tensors: x [B,H,W,C] normalised, y [B] class ids. */
export interface HostImageBatch {
  x: Float32Array;
  y: Int32Array;
  shape: [number, number, number, number];
}

export interface ImageBatcherOptions {
  batchSize: number;
  /** Normalisation statistics of the training split (normalize.ts). */
  stats: ChannelStats;
  /** Keys every shuffle and augmentation draw. */
  seed: number;
  /** A new random order each epoch; default true. */
  shuffle?: boolean;
  /** Default none. */
  augment?: AugmentOptions;
  /**
   * The last N mod B images of an epoch: 'keep' (default) yields them as a smaller final batch,
   * so ⌈N/B⌉ batches see every image once per epoch (the reference's ⌈45000/128⌉ = 352 steps);
   * 'drop' yields ⌊N/B⌋ full batches (with shuffling, different images are left out each epoch).
   */
  partial?: 'keep' | 'drop';
}

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Seed of the independent stream for (seed, epoch, index): murmur3's finaliser, chained. */
function streamSeed(seed: number, epoch: number, index: number): number {
  return fmix32((fmix32(fmix32(seed >>> 0) ^ epoch) + index) >>> 0);
}

export class ImageBatcher {
  readonly batchSize: number;
  readonly batchesPerEpoch: number;
  private readonly seed: number;
  private readonly shuffle: boolean;
  private readonly augment: AugmentOptions | undefined;
  private readonly table: Float32Array;
  private readonly scratch: Float32Array;
  private at: BatcherPosition = { epoch: 0, position: 0 };
  private order: { epoch: number; indices: number[] } | undefined;

  constructor(
    readonly dataset: ImageDataset,
    options: ImageBatcherOptions,
  ) {
    const { batchSize, stats } = options;
    if (!(Number.isInteger(batchSize) && batchSize >= 1))
      throw new RangeError(`batchSize ${batchSize} must be a positive integer`);
    if (stats.mean.length !== dataset.channels || stats.std.length !== dataset.channels)
      throw new RangeError(
        `normalisation statistics have ${stats.mean.length} channels, ${dataset.name} has ${dataset.channels}`,
      );
    this.batchSize = batchSize;
    const partial = options.partial ?? 'keep';
    this.batchesPerEpoch = (partial === 'drop' ? Math.floor : Math.ceil)(dataset.count / batchSize);
    if (this.batchesPerEpoch === 0)
      throw new RangeError(`${dataset.name}: ${dataset.count} images make no full batch of ${batchSize}`);
    this.seed = options.seed;
    this.shuffle = options.shuffle ?? true;
    const augment = options.augment;
    if (augment) checkAugment(augment);
    this.augment = augment && (augment.pad > 0 || augment.flip || augment.cutout > 0) ? { ...augment } : undefined;
    this.table = normalizationTable(stats);
    this.scratch = new Float32Array(dataset.height * dataset.width * dataset.channels);
  }

  get epoch(): number {
    return this.at.epoch;
  }

  /** Index of the next batch within the current epoch. */
  get position(): number {
    return this.at.position;
  }

  /** A copy of the position, for checkpoints. */
  get state(): BatcherPosition {
    return { ...this.at };
  }

  /** Continues from a saved position; with the same dataset and options the next batch is identical. */
  seek(at: BatcherPosition): void {
    this.at = checkPosition(at, this.batchesPerEpoch);
  }

  /** The next batch as typed arrays; advances, rolling over into the next epoch. */
  nextHost(): HostImageBatch {
    const { epoch, position } = this.at;
    const { height, width, channels, images, labels } = this.dataset;
    const size = height * width * channels;
    const start = position * this.batchSize;
    const n = Math.min(this.batchSize, this.dataset.count - start);
    const order = this.orderOf(epoch);
    const aug = this.augment && { options: this.augment, rng: new Random(streamSeed(this.seed, epoch, position + 1)) };
    const x = new Float32Array(n * size);
    const y = new Int32Array(n);
    for (let b = 0; b < n; b++) {
      const index = order ? order[start + b]! : start + b;
      y[b] = labels[index]!;
      // Normalise straight into the batch, or into scratch when augmentation copies it over.
      const target = aug ? this.scratch : x;
      const base = aug ? 0 : b * size;
      const from = index * size;
      for (let p = 0; p < size; p += channels)
        for (let k = 0; k < channels; k++) target[base + p + k] = this.table[k * 256 + images[from + p + k]!]!;
      if (aug) {
        const draw = drawAugment(aug.options, height, width, aug.rng);
        augmentImage(this.scratch, x, b * size, height, width, channels, draw);
      }
    }
    this.at = advance(this.at, this.batchesPerEpoch);
    return { x, y, shape: [n, height, width, channels] };
  }

  /** The next batch as tensors (x float32 [B,H,W,C], y int32 [B]); the caller disposes them. */
  next(): Batch {
    return toImageBatch(this.nextHost());
  }

  /** This epoch's permutation (cached), or undefined when not shuffling. */
  private orderOf(epoch: number): number[] | undefined {
    if (!this.shuffle) return undefined;
    if (this.order?.epoch !== epoch) {
      const indices = Array.from({ length: this.dataset.count }, (_, i) => i);
      this.order = { epoch, indices: new Random(streamSeed(this.seed, epoch, 0)).shuffle(indices) };
    }
    return this.order.indices;
  }
}

/** Tensors of a host batch; the caller disposes them. */
export function toImageBatch(host: HostImageBatch): Batch {
  return { x: tf.tensor4d(host.x, host.shape, 'float32'), y: tf.tensor1d(host.y, 'int32') };
}

/** One pass over `ds` in order, without augmentation, the last batch possibly smaller; callers dispose each batch. */
export function* evaluationBatches(ds: ImageDataset, stats: ChannelStats, batchSize: number): Generator<Batch> {
  const batcher = new ImageBatcher(ds, { batchSize, stats, seed: 0, shuffle: false });
  for (let i = 0; i < batcher.batchesPerEpoch; i++) yield batcher.next();
}
