/*
 * Registers replacement kernels while keeping the stock ones reachable: a replacement may hand
 * the cases it does not improve back to the stock kernel, and tests and benchmarks compare the two.
 */
import tf = require('@tensorflow/tfjs-core');
import type { KernelConfig } from '@tensorflow/tfjs-core';

const { getKernel, registerKernel, unregisterKernel } = tf;

const stockKernels = new Map<string, KernelConfig>();
const ours = new Set<KernelConfig>();

const key = (kernelName: string, backendName: string): string => `${backendName}/${kernelName}`;

/** The kernel the backend package registered before ours replaced it, if it had one. */
export function stockKernel(kernelName: string, backendName: string): KernelConfig | undefined {
  return stockKernels.get(key(kernelName, backendName));
}

/** The stock kernel a replacement delegates to; its absence is a registration-order bug. */
export function requireStockKernel(kernelName: string, backendName: string): KernelConfig {
  const stock = stockKernel(kernelName, backendName);
  if (!stock) throw new Error(`no stock ${kernelName} kernel recorded for backend ${backendName}`);
  return stock;
}

/**
 * Installs `config` in place of whatever is registered under its name (no tfjs "already
 * registered" warning). The stock kernel's setupFunc is kept, because the engine only calls the
 * setupFuncs of registered kernels and a replacement that delegates needs the stock one set up.
 * Does nothing if one of ours is already installed there.
 */
export function replaceKernel(config: KernelConfig): void {
  const { kernelName, backendName } = config;
  const current = getKernel(kernelName, backendName);
  if (current && ours.has(current)) return;
  const installed: KernelConfig = { ...config };
  if (current) {
    stockKernels.set(key(kernelName, backendName), current);
    unregisterKernel(kernelName, backendName);
    if (current.setupFunc && !config.setupFunc) installed.setupFunc = current.setupFunc;
    if (current.disposeFunc && !config.disposeFunc) installed.disposeFunc = current.disposeFunc;
  }
  ours.add(installed);
  registerKernel(installed);
}
