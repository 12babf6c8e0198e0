/*
 * Training kernels for the TensorFlow.js backends this project runs on without native
 * TensorFlow (see shared/reference/TFJS-BACKENDS.md §2): the gradients stock wasm lacks or gets
 * wrong, the slow paths it routes badly, and the cpu gradients too slow even for tests.
 * tfjs-node needs none of them.
 */
import tf = require('@tensorflow/tfjs-core');
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { convKernels } from './conv.js';
import { depthwiseKernels } from './depthwise.js';
import { matMulKernels } from './matmul.js';
import { poolKernels } from './pool.js';
import { replaceKernel } from './registry.js';
import { segmentKernels } from './segment.js';

const { getKernel } = tf;

export { stockKernel } from './registry.js';

const TRAINING_KERNELS: readonly KernelConfig[] = [
  ...convKernels,
  ...depthwiseKernels,
  ...poolKernels,
  ...segmentKernels,
  ...matMulKernels,
];

/** Names of the kernels we provide for `backendName` (empty for backends that need none). */
export function trainingKernelNames(backendName: string): string[] {
  return TRAINING_KERNELS.filter((config) => config.backendName === backendName).map((config) => config.kernelName);
}

/**
 * Installs our kernels for `backendName` in place of the stock ones (idempotent) and returns
 * their names. The backend's package must already be imported, since importing it registers
 * the stock kernels, which would then replace ours; call this before tf.setBackend.
 */
export function registerTrainingKernels(backendName: string): string[] {
  const configs = TRAINING_KERNELS.filter((config) => config.backendName === backendName);
  if (configs.length > 0 && !getKernel('Conv2D', backendName))
    throw new Error(`import the ${backendName} backend package before registering its training kernels`);
  for (const config of configs) replaceKernel(config);
  return configs.map((config) => config.kernelName);
}
