/*
 * Gradient functions for the few tfjs kernels the CNN models leave on the tape: the classifier's
 * matMul (trial/nn.ts Linear) and the sum of the main and aux losses (trial/cnn.ts). Everything else runs as
 * tf.customGrad ops with hand-made backward passes (trial/nn.ts). tfjs-core's Node bundle
 * registers no gradients at all, and its ESM `dist/register_all_gradients.js` cannot be loaded by
 * Node (extensionless imports).
 *
 * A kernel that already has a gradient is left alone (tuner/controller-gradients.ts registers an
 * overlapping set the same way for the controller). Every gradient is a tensor of its own, never
 * `dy` itself: the engine disposes a gradient once it has been summed into another.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, getGradient, registerGradient, type GradConfig } from '@tensorflow/tfjs-core';

const single = (dy: tf.Tensor | tf.Tensor[]): tf.Tensor => dy as tf.Tensor;

/** Sums `dy` over the axes along which an input of shape `shape` was broadcast. */
function unbroadcast(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = backend_util.getReductionAxes(shape, dy.shape);
  return axes.length ? tf.reshape(tf.sum(dy, axes), shape) : tf.clone(dy);
}

const CNN_GRADIENTS: GradConfig[] = [
  {
    kernelName: 'Add',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(single(dy), a!.shape), b: () => unbroadcast(single(dy), b!.shape) }),
  },
  {
    kernelName: 'Multiply',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({
      a: () => unbroadcast(tf.mul(single(dy), b!), a!.shape),
      b: () => unbroadcast(tf.mul(single(dy), a!), b!.shape),
    }),
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const g = single(dy);
      const transposeA = attrs['transposeA'] as boolean;
      const transposeB = attrs['transposeB'] as boolean;
      // The gradient products are transposed matMuls; trial/kernels makes those fast on wasm.
      return {
        a: () => (transposeA ? tf.matMul(b!, g, transposeB, true) : tf.matMul(g, b!, false, !transposeB)),
        b: () => (transposeB ? tf.matMul(g, a!, true, transposeA) : tf.matMul(a!, g, !transposeA, false)),
      };
    },
  },
];

for (const config of CNN_GRADIENTS) if (!getGradient(config.kernelName)) registerGradient(config);
