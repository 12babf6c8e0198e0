/*
 * Glue between a model's state (TrainableModel.state) and the weight store's named typed arrays.
 */
import tf = require('@tensorflow/tfjs-core');
import type { StateTensor } from './model.js';
import { layoutMismatch, tensorMismatch, type StoreTensor, type StoreTensors, type TensorDtype } from './store.js';

function storableDtype(name: string, variable: StateTensor): TensorDtype {
  if (variable.dtype !== 'float32' && variable.dtype !== 'int32') {
    throw new Error(`model state "${name}" is ${variable.dtype}; the weight store holds float32 and int32 only`);
  }
  return variable.dtype;
}

/**
 * The current values of every state variable. On the cpu backend the arrays may be the backend's
 * own buffers; that is safe because tfjs never writes into a tensor's data after creating it.
 */
export function readModelState(state: ReadonlyMap<string, StateTensor>): Map<string, StoreTensor> {
  const tensors = new Map<string, StoreTensor>();
  for (const [name, variable] of state) {
    storableDtype(name, variable);
    tensors.set(name, { shape: variable.shape, data: variable.dataSync<'float32' | 'int32'>() });
  }
  return tensors;
}

/** Throws "cannot <action>: …" unless `tensors` (called `source`) match the state exactly: names, dtypes, shapes. */
export function checkStateLayout(state: ReadonlyMap<string, StateTensor>, tensors: StoreTensors, action: string, source: string): void {
  const layout = [...state].map(([name, variable]) => ({ name, dtype: storableDtype(name, variable), shape: [...variable.shape] }));
  const mismatch = layoutMismatch(layout, tensors, source, 'the model');
  if (mismatch) throw new Error(`cannot ${action}: ${mismatch}`);
}

/**
 * `initial`'s values of tensor `name`, for a model built from stored weights; one that is missing
 * or of another shape or dtype is an error naming it.
 */
export function initialValues(initial: StoreTensors, name: string, shape: readonly number[], dtype: TensorDtype = 'float32'): Float32Array | Int32Array {
  const stored = initial.get(name);
  const mismatch = tensorMismatch({ name, dtype, shape }, stored, 'the weights to start from');
  if (mismatch) throw new Error(`cannot build the model: ${mismatch}`);
  return stored!.data;
}

/** `initial`'s tensor `name` as a new tf tensor (see initialValues). */
export function initialTensor(initial: StoreTensors, name: string, shape: readonly number[], dtype: TensorDtype = 'float32'): tf.Tensor {
  return tf.tensor(initialValues(initial, name, shape, dtype), [...shape], dtype);
}

/** Sets one state tensor to a copy of `data` (of its size and dtype). */
export function assignState(target: StateTensor, data: Float32Array | Int32Array): void {
  // A state tensor on the host (an optimizer slot, a deferred variable) takes the values as they are.
  if ('replace' in target) {
    target.replace(Float32Array.from(data));
    return;
  }
  const value = tf.tensor(data, [...target.shape], target.dtype);
  try {
    target.assign(value);
  } finally {
    // The variable took its own reference to the data; this handle would otherwise leak.
    value.dispose();
  }
}

/** Replaces a variable's value with host values. */
export function assignValues(variable: tf.Variable, values: Float32Array): void {
  const value = tf.tensor(values, variable.shape);
  variable.assign(value);
  value.dispose();
}

/** Sets every state tensor from `tensors`, which must match the state exactly (names, dtypes, shapes). */
export function assignModelState(state: ReadonlyMap<string, StateTensor>, tensors: StoreTensors): void {
  checkStateLayout(state, tensors, 'assign weights to the model', 'the weights to assign');
  for (const [name, target] of state) assignState(target, tensors.get(name)!.data);
}
