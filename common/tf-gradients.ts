/*
 * Gradient functions for the tfjs kernels our models leave on tfjs's tape: the controller's loss
 * (tuner/controller.ts) and the CNN classifiers' matMul and loss sum (trial/nn.ts; everything
 * else there runs as tf.customGrad ops with hand-written backward passes).
 *
 * tfjs-core's Node bundle registers no gradients. Its `dist/register_all_gradients.js` is ESM
 * with extensionless imports, which Node cannot load. Without these, `tf.variableGrads` fails with
 * "gradient function not found for Add". A kernel that already has a gradient is left alone, so a
 * project-wide registration takes precedence over these.
 */
import tf = require('@tensorflow/tfjs-core');

const { backend_util, getGradient, registerGradient, slice_util, util } = tf;
type GradConfig = tf.GradConfig;

/*
 * Every gradient must be a tensor of its own, never `dy` itself: the engine disposes a gradient
 * once it has been added to another, which would free a `dy` shared by two inputs.
 */

/** Sums `dy` over the axes along which an input of shape `shape` was broadcast. */
function unbroadcast(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = backend_util.getReductionAxes(shape, dy.shape);
  return axes.length ? tf.reshape(tf.sum(dy, axes), shape) : tf.clone(dy);
}

const single = (dy: tf.Tensor | tf.Tensor[]): tf.Tensor => dy as tf.Tensor;

const GRADIENTS: GradConfig[] = [
  {
    kernelName: 'Add',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(single(dy), a!.shape), b: () => unbroadcast(single(dy), b!.shape) }),
  },
  {
    kernelName: 'Sub',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(single(dy), a!.shape), b: () => tf.neg(unbroadcast(single(dy), b!.shape)) }),
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
    kernelName: 'RealDiv',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({
      a: () => unbroadcast(tf.div(single(dy), b!), a!.shape),
      b: () => unbroadcast(tf.neg(tf.div(tf.mul(single(dy), a!), tf.square(b!))), b!.shape),
    }),
  },
  { kernelName: 'Neg', gradFunc: (dy) => ({ x: () => tf.neg(single(dy)) }) },
  { kernelName: 'Identity', gradFunc: (dy) => ({ x: () => tf.clone(single(dy)) }) },
  {
    kernelName: 'Sigmoid',
    outputsToSave: [true],
    gradFunc: (dy, [y]) => ({ x: () => tf.mul(single(dy), tf.mul(y!, tf.sub(1, y!))) }),
  },
  {
    kernelName: 'Tanh',
    outputsToSave: [true],
    gradFunc: (dy, [y]) => ({ x: () => tf.mul(single(dy), tf.sub(1, tf.square(y!))) }),
  },
  { kernelName: 'Log', inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.div(single(dy), x!) }) },
  {
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const axes = util.parseAxisParam(attrs['axis'] as number | number[], x!.shape);
      const keptShape = x!.shape.map((size, axis) => (axes.includes(axis) ? 1 : size));
      return { x: () => tf.broadcastTo(tf.reshape(single(dy), keptShape), x!.shape) };
    },
  },
  {
    kernelName: 'AddN',
    saveAllInputs: true,
    gradFunc: (dy, saved) => Object.fromEntries(saved.map((_, i) => [i, () => tf.clone(single(dy))])),
  },
  { kernelName: 'Reshape', inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.reshape(single(dy), x!.shape) }) },
  {
    kernelName: 'Slice',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const [begin, size] = slice_util.parseSliceParams(x!, attrs['begin'] as number[], attrs['size'] as number[]);
      const padding = x!.shape.map((extent, axis): [number, number] => [begin[axis]!, extent - begin[axis]! - size[axis]!]);
      return { x: () => tf.pad(single(dy), padding) };
    },
  },
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = util.parseAxisParam(attrs['axis'] as number, saved[0]!.shape)[0]!;
      const parts = tf.split(single(dy), saved.map((t) => t.shape[axis]!), axis);
      return Object.fromEntries(parts.map((part, i) => [i, () => part]));
    },
  },
  {
    kernelName: 'SplitV',
    gradFunc: (dy, _, attrs) => ({ x: () => tf.concat(dy as tf.Tensor[], attrs['axis'] as number) }),
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const g = single(dy);
      const transposeA = attrs['transposeA'] as boolean;
      const transposeB = attrs['transposeB'] as boolean;
      // d(op(A)·op(B)) for each transpose combination, then summed over broadcast batch dims.
      // The products are transposed matMuls, which trial/kernels makes fast on wasm.
      const da = () => (transposeA ? tf.matMul(b!, g, transposeB, true) : tf.matMul(g, b!, false, !transposeB));
      const db = () => (transposeB ? tf.matMul(g, a!, true, transposeA) : tf.matMul(a!, g, !transposeA, false));
      // The products are fresh tensors: only broadcast batch dims need a reduction, not a copy.
      const fit = (t: tf.Tensor, shape: number[]) => (backend_util.getReductionAxes(shape, t.shape).length ? unbroadcast(t, shape) : t);
      return { a: () => fit(da(), a!.shape), b: () => fit(db(), b!.shape) };
    },
  },
];

for (const config of GRADIENTS) if (!getGradient(config.kernelName)) registerGradient(config);
