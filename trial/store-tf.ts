/*
 * Glue between a model's state (TrainableModel.state) and the weight store's named typed arrays.
 */
import tf = require('@tensorflow/tfjs-core');
import { layoutMismatch, type StoreTensor, type StoreTensors, type TensorDtype } from './store.js';

function storableDtype(name: string, variable: tf.Variable): TensorDtype {
  if (variable.dtype !== 'float32' && variable.dtype !== 'int32') {
    throw new Error(`model state "${name}" is ${variable.dtype}; the weight store holds float32 and int32 only`);
  }
  return variable.dtype;
}

/**
 * The current values of every state variable. On the cpu backend the arrays may be the backend's
 * own buffers; that is safe because tfjs never writes into a tensor's data after creating it.
 */
export function readModelState(state: ReadonlyMap<string, tf.Variable>): Map<string, StoreTensor> {
  const tensors = new Map<string, StoreTensor>();
  for (const [name, variable] of state) {
    storableDtype(name, variable);
    tensors.set(name, { shape: variable.shape, data: variable.dataSync<'float32' | 'int32'>() });
  }
  return tensors;
}

/** Throws "cannot <action>: …" unless `tensors` (called `source`) match the state exactly: names, dtypes, shapes. */
export function checkStateLayout(state: ReadonlyMap<string, tf.Variable>, tensors: StoreTensors, action: string, source: string): void {
  const layout = [...state].map(([name, variable]) => ({ name, dtype: storableDtype(name, variable), shape: variable.shape }));
  const mismatch = layoutMismatch(layout, tensors, source, 'the model');
  if (mismatch) throw new Error(`cannot ${action}: ${mismatch}`);
}

/**
 * `initial`'s tensor `name` as a new tf tensor, for a model built from stored weights; one that
 * is missing or of another shape or dtype is an error naming it.
 */
export function initialTensor(initial: StoreTensors, name: string, shape: readonly number[], dtype: TensorDtype = 'float32'): tf.Tensor {
  const stored = initial.get(name);
  const mismatch = layoutMismatch([{ name, dtype, shape: [...shape] }], new Map(stored ? [[name, stored]] : []), 'the weights to start from', 'the model');
  if (mismatch || !stored) throw new Error(`cannot build the model: ${mismatch}`);
  return tf.tensor(stored.data, [...shape], dtype);
}

/** Sets every state variable from `tensors`, which must match the state exactly (names, dtypes, shapes). */
export function assignModelState(state: ReadonlyMap<string, tf.Variable>, tensors: StoreTensors): void {
  checkStateLayout(state, tensors, 'assign weights to the model', 'the weights to assign');
  for (const [name, variable] of state) {
    const { data, shape } = tensors.get(name)!;
    const value = tf.tensor(data, [...shape], variable.dtype);
    try {
      variable.assign(value);
    } finally {
      // The variable took its own reference to the data; this handle would otherwise leak.
      value.dispose();
    }
  }
}
