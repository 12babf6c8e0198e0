/*
 * The flags that shape one search, in one list: `nni-enas search` offers them and `bench
 * search-quality` passes them on to each of its searches, so a new flag reaches both.
 */
import { WEIGHT_SHARING, type WeightSharing } from '../trial/options.js';
import type { SearchOverrides } from './settings.js';

export const SEARCH_FLAGS = {
  epochs: { type: 'number', describe: 'epochs of the whole search (search --resume: extend a finished one)' },
  'controller-steps': { type: 'number', describe: 'controller updates per epoch (reference: micro 30, macro 50, rnn 100)' },
  'num-aggregate': { type: 'number', describe: 'rewards per controller update (overrides classArgs num_aggregate)' },
  'derive-samples': { type: 'number', describe: 'architectures the closing derive samples' },
  'warmup-epochs': { type: 'number', describe: 'first epochs train the supernet on uniformly random architectures, without controller phase (reference: 0)' },
  'reward-batches': { type: 'number', describe: 'score all rewards of a controller update on the same K validation batches (0: the reference, the next single batch each)' },
  'weight-sharing': { choices: WEIGHT_SHARING, describe: 'CNN supernets: per-input (reference) or per-node op weights' },
  'init-scale': { type: 'number', describe: "CNNs: scale of the He-normal init's standard deviation (reference: 1)" },
  'grad-clip': { type: 'number', describe: "CNN supernets: clip the gradient's global norm (0: none, the reference, whose bound 5 is a no-op)" },
  layers: { type: 'number', describe: 'micro: num_layers, the supernet has num_layers + 2 cells' },
} as const;

/** The sizing flags search and retrain share. */
export const SIZE_FLAGS = {
  subset: { type: 'number', describe: "images per class of each split (text: tokens per split) instead of the preset's" },
  channels: { type: 'number', describe: 'CNN channels of the first stage' },
  hidden: { type: 'number', describe: 'rnn: hidden and embedding size' },
  'batch-size': { type: 'number', describe: 'training batch' },
} as const;

export type SearchFlag = keyof typeof SEARCH_FLAGS | keyof typeof SIZE_FLAGS;
export const SEARCH_FLAG_NAMES = [...Object.keys(SEARCH_FLAGS), ...Object.keys(SIZE_FLAGS)] as SearchFlag[];

export type SearchFlagValues = {
  [F in SearchFlag]?: F extends 'weight-sharing' ? WeightSharing : number;
};

/** The overrides these flags make; the caller adds preset, policy, seed and backend. */
export function overridesFromFlags(flags: SearchFlagValues): Omit<SearchOverrides, 'preset'> {
  return {
    epochs: flags.epochs,
    controllerSteps: flags['controller-steps'],
    numAggregate: flags['num-aggregate'],
    deriveSamples: flags['derive-samples'],
    warmupEpochs: flags['warmup-epochs'],
    rewardBatches: flags['reward-batches'],
    trial: {
      subset: flags.subset,
      channels: flags.channels,
      layers: flags.layers,
      hidden: flags.hidden,
      batchSize: flags['batch-size'],
      weightSharing: flags['weight-sharing'],
      initScale: flags['init-scale'],
      gradClip: flags['grad-clip'],
    },
  };
}
