/*
 * The one operation registry (the DARTS `OPS` idea): every supernet and fixed network builds
 * its operations from here, keyed by the names in search-spaces/genotype.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { RnnActivation } from '../search-spaces/genotype.js';

/** RNN node activations (ENAS.md §1c). */
export const RNN_ACTIVATION_FNS: Record<RnnActivation, (x: tf.Tensor) => tf.Tensor> = {
  tanh: (x) => tf.tanh(x),
  relu: (x) => tf.relu(x),
  identity: (x) => x,
  sigmoid: (x) => tf.sigmoid(x),
};
