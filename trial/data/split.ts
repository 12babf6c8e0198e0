/*
 * Train/validation splits and small subsets. Splits are views (no copies) of contiguous ranges,
 * so they are cheap and provably disjoint.
 */
import type { ImageDataset } from './types.js';

export interface SplitOptions {
  /** Validation images as a fraction of the training set; default 0.1 (the reference's 5000 of 50000). */
  validFraction?: number;
  /** Exact number of validation images; overrides validFraction. */
  validCount?: number;
  /** Final (retraining) mode: train on train+valid and hold nothing out (ENAS.md §3). */
  final?: boolean;
}

/** Images [start, end) of `ds` as a view sharing its memory. */
export function sliceDataset(ds: ImageDataset, start: number, end: number): ImageDataset {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= ds.count))
    throw new RangeError(`slice [${start}, ${end}) is outside ${ds.name}'s ${ds.count} images`);
  const size = ds.height * ds.width * ds.channels;
  return {
    ...ds,
    images: ds.images.subarray(start * size, end * size),
    labels: ds.labels.subarray(start, end),
    count: end - start,
  };
}

/**
 * Splits a training set into the first part (train) and the held-out tail (valid), as the
 * reference does for CIFAR-10 (ENAS.md §3: first 45000 / last 5000). In final mode `train` is
 * the whole set and there is no `valid`.
 */
export function splitTrainValid(
  ds: ImageDataset,
  options: SplitOptions = {},
): { train: ImageDataset; valid: ImageDataset | undefined } {
  if (options.final) return { train: ds, valid: undefined };
  const fraction = options.validFraction ?? 0.1;
  const valid = options.validCount ?? Math.round(fraction * ds.count);
  if (!(Number.isInteger(valid) && valid >= 1 && valid < ds.count))
    throw new RangeError(
      `validation split of ${valid} images (count ${options.validCount}, fraction ${fraction}) ` +
        `must leave both splits non-empty in ${ds.name}'s ${ds.count} images`,
    );
  return { train: sliceDataset(ds, 0, ds.count - valid), valid: sliceDataset(ds, ds.count - valid, ds.count) };
}

/**
 * The first `perClass` images of each class, in dataset order (all of a class if it has fewer),
 * copied into a new dataset: a deterministic, balanced miniature for tests and smoke runs.
 */
export function tinySubset(ds: ImageDataset, perClass: number): ImageDataset {
  if (!(Number.isInteger(perClass) && perClass >= 1))
    throw new RangeError(`perClass ${perClass} must be a positive integer`);
  const taken = new Array<number>(ds.classes).fill(0);
  const picks: number[] = [];
  for (let i = 0; i < ds.count; i++) {
    const label = ds.labels[i]!;
    if (taken[label]! < perClass) {
      taken[label]!++;
      picks.push(i);
    }
  }
  const size = ds.height * ds.width * ds.channels;
  const images = new Uint8Array(picks.length * size);
  const labels = new Uint8Array(picks.length);
  picks.forEach((src, i) => {
    images.set(ds.images.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = ds.labels[src]!;
  });
  return { ...ds, images, labels, count: picks.length };
}
