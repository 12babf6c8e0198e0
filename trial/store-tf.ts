/*
 * Glue between a model's state (TrainableModel.state) and the weight store's named typed arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
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

/** Sets every state variable from `tensors`, which must match the state exactly (names, dtypes, shapes). */
export function assignModelState(state: ReadonlyMap<string, tf.Variable>, tensors: StoreTensors): void {
  const layout = [...state].map(([name, variable]) => ({ name, dtype: storableDtype(name, variable), shape: variable.shape }));
  const mismatch = layoutMismatch(layout, tensors, 'the weights to assign', 'the model');
  if (mismatch) throw new Error(`cannot assign weights to the model: ${mismatch}`);
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
