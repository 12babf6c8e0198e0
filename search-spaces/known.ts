/*
 * Published architectures written down as values (as DARTS's genotypes.py does), so a reader
 * compares them at a glance and tests and retraining can start from them.
 */
import { fromTokens, DEFAULT_SPECS } from './spaces.js';
import type { MicroGenotype, RnnGenotype } from './genotype.js';

/** The micro cells released with the reference scripts (ENAS.md §4, `micro_final`). */
export const ENAS_MICRO_CIFAR10 = fromTokens(DEFAULT_SPECS.micro, [
  ...[0, 2, 0, 0, 0, 4, 0, 1, 0, 4, 1, 1, 1, 0, 0, 1, 0, 2, 1, 1],
  ...[1, 0, 1, 0, 0, 3, 0, 2, 1, 1, 3, 1, 1, 0, 0, 4, 0, 3, 1, 1],
]) as MicroGenotype;

/** The PTB cell released with the reference scripts (ENAS.md §4, `ptb_final`); loose ends {3,4,7,9,10,11}. */
export const ENAS_RNN_PTB = fromTokens(
  DEFAULT_SPECS.rnn,
  [0, 0, 0, 1, 1, 2, 1, 2, 0, 2, 0, 5, 1, 1, 0, 6, 1, 8, 1, 8, 1, 8, 1],
) as RnnGenotype;
