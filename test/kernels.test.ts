/*
 * Every kernel of trial/kernels against an independent reference, on tiny shapes:
 * - the stock cpu kernel (captured before ours replace anything) where it is right;
 * - naive loops and the adjoint identity <dy, f(x)> = <f'(x)ᵀdy, x> on the forward kernel,
 *   where stock kernels are wrong (average pool borders, all-negative max-pool windows).
 * Both backends live in this process; tf.setBackend switches between them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { setupBackend } from '../trial/backend.js';
import { reluMask } from '../trial/nn.js';
import { registerTrainingKernels, trainingKernelNames } from '../trial/kernels/index.js';
import { FunctionBuilder, addF32x4, assembleModule, get, loadV128, splatF32, storeV128 } from '../trial/kernels/wasm-asm.js';

type Backend = 'cpu' | 'wasm';
type Values = Float32Array | Int32Array;
interface Data {
  shape: number[];
  values: Values;
}
type Shape4 = [number, number, number, number];

const KERNELS = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'MaxPoolGrad',
  'AvgPoolGrad',
  'UnsortedSegmentSum',
  'BatchMatMul',
] as const;
const stockCpu = new Map<string, KernelConfig>();
const stockWasm = new Map<string, KernelConfig>();

beforeAll(async () => {
  for (const name of KERNELS) {
    const cpu = tf.getKernel(name, 'cpu');
    if (cpu) stockCpu.set(name, cpu);
    const wasm = tf.getKernel(name, 'wasm');
    if (wasm) stockWasm.set(name, wasm);
  }
  registerTrainingKernels('cpu');
  registerTrainingKernels('wasm');
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

/** Deterministic data: uniform in [-1, 1), with about `zeroFraction` exact zeros (as after a ReLU). */
function random(shape: number[], seed: number, zeroFraction = 0): Data {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = next() < zeroFraction ? 0 : next() * 2 - 1;
  return { shape, values };
}

/**
 * Runs `kernelName` on `backend` (the registered kernel, or `kernel` if given) and checks that
 * no tensor and no backend buffer outlives the call.
 */
async function run(
  backend: Backend,
  kernelName: string,
  inputs: Record<string, Data>,
  attrs: object,
  kernel?: KernelConfig,
): Promise<Data> {
  await tf.setBackend(backend);
  const engineBackend = tf.backend();
  const tensorsBefore = tf.memory().numTensors;
  const buffersBefore = engineBackend.numDataIds();
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, data] of Object.entries(inputs))
    tensors[name] = tf.tensor(data.values, data.shape, data.values instanceof Int32Array ? 'int32' : 'float32');
  let result: Data;
  try {
    if (kernel) {
      const info = kernel.kernelFunc({ inputs: tensors, backend: engineBackend, attrs: attrs as NamedAttrMap }) as TensorInfo;
      result = { shape: info.shape, values: (engineBackend.readSync(info.dataId) as Values).slice() };
      engineBackend.disposeData(info.dataId);
    } else {
      const out = tf.engine().runKernel(kernelName, tensors, attrs as NamedAttrMap) as tf.Tensor;
      result = { shape: out.shape, values: (out.dataSync() as Values).slice() };
      out.dispose();
    }
  } finally {
    tf.dispose(Object.values(tensors));
  }
  expect(tf.memory().numTensors, 'tensors leaked').toBe(tensorsBefore);
  expect(engineBackend.numDataIds(), 'backend buffers leaked').toBe(buffersBefore);
  return result;
}

function stock(backendMap: Map<string, KernelConfig>, name: string): KernelConfig {
  const config = backendMap.get(name);
  if (!config) throw new Error(`no stock ${name}`);
  return config;
}

function maxError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i]));
    worst = Math.max(worst, Number.isNaN(error) ? Infinity : error);
  }
  return worst;
}

function expectClose(actual: Data, expected: Data, tolerance = 2e-5): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(actual.values.length).toBe(expected.values.length);
  expect(maxError(actual.values, expected.values)).toBeLessThan(tolerance);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

interface ConvCase {
  name: string;
  x: Shape4;
  k: number;
  stride: number;
  pad: 'same' | 'valid';
  outChannels: number;
}

const CONV_CASES: ConvCase[] = [
  { name: '3×3 stride 1 same', x: [2, 5, 5, 3], k: 3, stride: 1, pad: 'same', outChannels: 4 },
  { name: '3×3 stride 1 valid, non-square', x: [2, 6, 5, 3], k: 3, stride: 1, pad: 'valid', outChannels: 2 },
  { name: '3×3 stride 2 same, odd sizes', x: [2, 7, 6, 3], k: 3, stride: 2, pad: 'same', outChannels: 2 },
  { name: '3×3 stride 2 valid, last row unread', x: [2, 8, 8, 2], k: 3, stride: 2, pad: 'valid', outChannels: 3 },
  { name: '5×5 stride 1 same', x: [3, 5, 5, 4], k: 5, stride: 1, pad: 'same', outChannels: 2 },
  { name: '5×5 stride 2 valid', x: [1, 9, 10, 2], k: 5, stride: 2, pad: 'valid', outChannels: 3 },
  { name: '1×1 stride 1', x: [2, 6, 6, 3], k: 1, stride: 1, pad: 'valid', outChannels: 5 },
  { name: '1×1 stride 2 same, odd sizes', x: [2, 7, 7, 3], k: 1, stride: 2, pad: 'same', outChannels: 4 },
  { name: '3×3 stride 2 same, 4 channels (SIMD)', x: [2, 9, 7, 4], k: 3, stride: 2, pad: 'same', outChannels: 4 },
  { name: '5×5 stride 1 same, 8 channels (SIMD)', x: [2, 6, 7, 8], k: 5, stride: 1, pad: 'same', outChannels: 4 },
  { name: '3×3 stride 2 valid, 4 channels (SIMD)', x: [2, 8, 9, 4], k: 3, stride: 2, pad: 'valid', outChannels: 4 },
  { name: '1×1 stride 1, 4 channels (SIMD)', x: [1, 3, 3, 4], k: 1, stride: 1, pad: 'same', outChannels: 4 },
  { name: '5×5 stride 1 same on a 1×2 map (taps off every edge)', x: [2, 1, 2, 4], k: 5, stride: 1, pad: 'same', outChannels: 3 },
  { name: '3×3 stride 1 same, batch 4, 8→4 channels (SIMD)', x: [4, 5, 6, 8], k: 3, stride: 1, pad: 'same', outChannels: 4 },
  { name: '3×3 stride 1 same, batch 4, 8→3 channels (fallback with SIMD transpose)', x: [4, 5, 6, 8], k: 3, stride: 1, pad: 'same', outChannels: 3 },
  { name: '3×3 stride 2 valid, batch 4, 4→8 channels (SIMD)', x: [4, 7, 7, 4], k: 3, stride: 2, pad: 'valid', outChannels: 8 },
  { name: '1×1 stride 2 valid, 4→12 channels (SIMD)', x: [2, 7, 9, 4], k: 1, stride: 2, pad: 'valid', outChannels: 12 },
  { name: '5×5 stride 2 same, 8→12 channels (SIMD)', x: [2, 9, 8, 8], k: 5, stride: 2, pad: 'same', outChannels: 12 },
  { name: '3×3 stride 1 same, 70 columns (SIMD row chunks)', x: [1, 2, 70, 4], k: 3, stride: 1, pad: 'same', outChannels: 8 },
];

function convOutShape(c: ConvCase, outChannels: number, depthwise: boolean): number[] {
  const filter: Shape4 = [c.k, c.k, c.x[3], depthwise ? 1 : outChannels];
  return tf.backend_util.computeConv2DInfo(c.x, filter, c.stride, 1, c.pad, undefined, depthwise).outShape;
}

describe('registration', () => {
  it('replaces the stock kernels of wasm and cpu, idempotently', () => {
    expect(trainingKernelNames('wasm').sort()).toEqual([...KERNELS].sort());
    expect(trainingKernelNames('cpu').sort()).toEqual(
      ['AvgPoolGrad', 'Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'MaxPoolGrad', 'UnsortedSegmentSum'].sort(),
    );
    expect(trainingKernelNames('tensorflow')).toEqual([]);
    for (const name of trainingKernelNames('wasm')) expect(tf.getKernel(name, 'wasm')).not.toBe(stockWasm.get(name));
    const installed = tf.getKernel('MaxPoolGrad', 'wasm');
    registerTrainingKernels('wasm');
    expect(tf.getKernel('MaxPoolGrad', 'wasm')).toBe(installed);
  });

  it('setupBackend installs them and reports SIMD and threads', async () => {
    const info = await setupBackend('wasm');
    expect(info.name).toBe('wasm');
    expect(info.detail).toMatch(/^@tensorflow\/tfjs-backend-wasm \((no )?simd, \d+ threads?\)$/);
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });
});

describe('conv2d gradients match stock cpu', () => {
  for (const c of CONV_CASES) {
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC' };
    const filterShape: Shape4 = [c.k, c.k, c.x[3], c.outChannels];
    const x = random(c.x, 1, 0.3);
    const dy = random(convOutShape(c, c.outChannels, false), 2);
    const filter = random(filterShape, 3);

    it(`Conv2DBackpropFilter ${c.name}`, async () => {
      const inputs = { x, dy };
      const expected = await run('cpu', '', inputs, { ...attrs, filterShape }, stock(stockCpu, 'Conv2DBackpropFilter'));
      expectClose(await run('wasm', 'Conv2DBackpropFilter', inputs, { ...attrs, filterShape }), expected);
      expectClose(await run('cpu', 'Conv2DBackpropFilter', inputs, { ...attrs, filterShape }), expected);
    });

    it(`Conv2DBackpropInput ${c.name}`, async () => {
      const inputs = { dy, filter };
      const expected = await run('cpu', '', inputs, { ...attrs, inputShape: c.x }, stock(stockCpu, 'Conv2DBackpropInput'));
      expectClose(await run('wasm', 'Conv2DBackpropInput', inputs, { ...attrs, inputShape: c.x }), expected);
    });
  }
});

describe('conv2d gradients with explicit padding wider than the filter (stock fallback)', () => {
  const pad = [
    [0, 0],
    [3, 2],
    [2, 3],
    [0, 0],
  ];
  const xShape: Shape4 = [2, 5, 6, 4];
  const filterShape: Shape4 = [3, 3, 4, 4];
  const outShape = tf.backend_util.computeConv2DInfo(xShape, filterShape, 1, 1, pad as never).outShape;
  const attrs = { strides: 1, pad, dataFormat: 'NHWC' };

  it('Conv2DBackpropInput', async () => {
    const inputs = { dy: random(outShape, 41), filter: random(filterShape, 42) };
    const expected = await run('cpu', '', inputs, { ...attrs, inputShape: xShape }, stock(stockCpu, 'Conv2DBackpropInput'));
    expectClose(await run('wasm', 'Conv2DBackpropInput', inputs, { ...attrs, inputShape: xShape }), expected);
  });

  it('Conv2DBackpropFilter', async () => {
    const inputs = { x: random(xShape, 43), dy: random(outShape, 44) };
    const expected = await run('cpu', '', inputs, { ...attrs, filterShape }, stock(stockCpu, 'Conv2DBackpropFilter'));
    expectClose(await run('wasm', 'Conv2DBackpropFilter', inputs, { ...attrs, filterShape }), expected);
    expectClose(await run('cpu', 'Conv2DBackpropFilter', inputs, { ...attrs, filterShape }), expected);
  });
});

describe('depthwise conv2d gradients (multiplier 1) match stock cpu', () => {
  for (const c of CONV_CASES) {
    const attrs = { strides: c.stride, pad: c.pad, dilations: 1 };
    const filterShape: Shape4 = [c.k, c.k, c.x[3], 1];
    const x = random(c.x, 4, 0.3);
    const dy = random(convOutShape(c, 1, true), 5);

    it(`DepthwiseConv2dNativeBackpropFilter ${c.name}`, async () => {
      const inputs = { x, dy };
      const expected = await run('cpu', '', inputs, { ...attrs, filterShape }, stock(stockCpu, 'DepthwiseConv2dNativeBackpropFilter'));
      expectClose(await run('wasm', 'DepthwiseConv2dNativeBackpropFilter', inputs, { ...attrs, filterShape }), expected);
      expectClose(await run('cpu', 'DepthwiseConv2dNativeBackpropFilter', inputs, { ...attrs, filterShape }), expected);
    });

    it(`DepthwiseConv2dNativeBackpropInput ${c.name}`, async () => {
      const inputs = { dy, filter: random(filterShape, 6) };
      const expected = await run('cpu', '', inputs, { ...attrs, inputShape: c.x }, stock(stockCpu, 'DepthwiseConv2dNativeBackpropInput'));
      expectClose(await run('wasm', 'DepthwiseConv2dNativeBackpropInput', inputs, { ...attrs, inputShape: c.x }), expected);
    });
  }

  it('handles explicit padding wider than the filter with 4 channels (SIMD), rejects it with 3', async () => {
    const pad = [
      [0, 0],
      [3, 2],
      [2, 3],
      [0, 0],
    ];
    for (const channels of [4, 3]) {
      const xShape: Shape4 = [2, 5, 6, channels];
      const filterShape: Shape4 = [3, 3, channels, 1];
      const outShape = tf.backend_util.computeConv2DInfo(xShape, filterShape, 1, 1, pad as never, undefined, true).outShape;
      const attrs = { strides: 1, pad, dilations: 1 };
      const x = random(xShape, 45);
      const dy = random(outShape, 46);
      const filter = random(filterShape, 47);
      const dW = await run('cpu', '', { x, dy }, { ...attrs, filterShape }, stock(stockCpu, 'DepthwiseConv2dNativeBackpropFilter'));
      expectClose(await run('wasm', 'DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape }), dW);
      const dxInputs = { dy, filter };
      const dx = await run('cpu', '', dxInputs, { ...attrs, inputShape: xShape }, stock(stockCpu, 'DepthwiseConv2dNativeBackpropInput'));
      if (channels === 4) expectClose(await run('wasm', 'DepthwiseConv2dNativeBackpropInput', dxInputs, { ...attrs, inputShape: xShape }), dx);
      else
        await expect(run('wasm', 'DepthwiseConv2dNativeBackpropInput', dxInputs, { ...attrs, inputShape: xShape })).rejects.toThrow(
          /padding wider than the filter/,
        );
    }
  });

  it('rejects channel multipliers other than 1 with a clear error and leaves no buffers behind', async () => {
    await tf.setBackend('wasm');
    const buffersBefore = tf.backend().numDataIds();
    const x = tf.tensor(random([1, 4, 4, 2], 7).values, [1, 4, 4, 2]);
    const dy = tf.tensor(random([1, 4, 4, 4], 8).values, [1, 4, 4, 4]);
    const attrs = { strides: 1, pad: 'same', dilations: 1, filterShape: [3, 3, 2, 2] };
    expect(() => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, attrs)).toThrow(/channel multiplier 1/);
    tf.dispose([x, dy]);
    expect(tf.backend().numDataIds()).toBe(buffersBefore);
  });
});

interface PoolCase {
  name: string;
  k: number;
  stride: number;
  pad: 'same' | 'valid';
}

const POOL_CASES: PoolCase[] = [
  { name: '3×3 stride 1 same', k: 3, stride: 1, pad: 'same' },
  { name: '3×3 stride 2 same', k: 3, stride: 2, pad: 'same' },
  { name: '3×3 stride 2 valid', k: 3, stride: 2, pad: 'valid' },
  { name: '2×2 stride 2 valid', k: 2, stride: 2, pad: 'valid' },
  { name: '5×5 stride 3 valid (aux head)', k: 5, stride: 3, pad: 'valid' },
  { name: '1×1 stride 1', k: 1, stride: 1, pad: 'valid' },
];
/** Channels a multiple of 4 take the SIMD path on wasm; others the plain-JS loop. */
const POOL_INPUTS: Shape4[] = [
  [2, 8, 7, 4],
  [1, 7, 8, 3],
];

/** Naive reference: input pixels and divisor of each pooling window, straight from the definition. */
function poolWindows(c: PoolCase, shape: Shape4): { outShape: number[]; windows: { out: number; pixels: number[] }[] } {
  const info = tf.backend_util.computePool2DInfo(shape, c.k, c.stride, 1, c.pad);
  const [batch, height, width, channels] = shape;
  const windows: { out: number; pixels: number[] }[] = [];
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < info.outHeight; i++)
      for (let j = 0; j < info.outWidth; j++)
        for (let ch = 0; ch < channels; ch++) {
          const pixels: number[] = [];
          for (let a = 0; a < c.k; a++)
            for (let b = 0; b < c.k; b++) {
              const h = i * c.stride + a - info.padInfo.top;
              const w = j * c.stride + b - info.padInfo.left;
              if (h >= 0 && h < height && w >= 0 && w < width) pixels.push(((n * height + h) * width + w) * channels + ch);
            }
          windows.push({ out: ((n * info.outHeight + i) * info.outWidth + j) * channels + ch, pixels });
        }
  return { outShape: info.outShape, windows };
}

function naiveMaxPoolGrad(c: PoolCase, shape: Shape4, x: Float32Array, dy: Float32Array): Float32Array {
  const dx = new Float32Array(x.length);
  for (const { out, pixels } of poolWindows(c, shape).windows) {
    let best = pixels[0];
    for (const p of pixels) if (x[p] > x[best]) best = p;
    dx[best] += dy[out];
  }
  return dx;
}

function naiveAvgPoolGrad(c: PoolCase, shape: Shape4, dy: Float32Array): Float32Array {
  const dx = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (const { out, pixels } of poolWindows(c, shape).windows) for (const p of pixels) dx[p] += dy[out] / pixels.length;
  return dx;
}

describe('pool gradients', () => {
  for (const shape of POOL_INPUTS) {
    for (const c of POOL_CASES) {
      const attrs = { filterSize: c.k, strides: c.stride, pad: c.pad };
      const name = `${c.name} on [${shape}]`;
      const dy = random(poolWindows(c, shape).outShape, 11);
      const mixed = random(shape, 12);
      const allNegative: Data = { shape, values: mixed.values.map((v) => -Math.abs(v) - 0.25) };

      for (const [label, x] of [
        ['mixed signs', mixed],
        ['all negative', allNegative],
      ] as const) {
        it(`MaxPoolGrad ${name}, ${label}: naive loop, stock cpu and the adjoint identity`, async () => {
          const expected: Data = { shape, values: naiveMaxPoolGrad(c, shape, x.values as Float32Array, dy.values as Float32Array) };
          for (const backend of ['wasm', 'cpu'] as const) {
            const forward = await run(backend, 'MaxPool', { x }, attrs);
            const inputs = { dy, input: x, output: forward };
            const dx = await run(backend, 'MaxPoolGrad', inputs, attrs);
            expectClose(dx, expected);
            expect(dot(dx.values, x.values)).toBeCloseTo(dot(dy.values, forward.values), 4);
            if (backend === 'cpu') expectClose(await run('cpu', '', inputs, attrs, stock(stockCpu, 'MaxPoolGrad')), expected);
          }
        });
      }

      it(`AvgPoolGrad ${name}: naive loop and the adjoint identity of the forward pool`, async () => {
        const expected: Data = { shape, values: naiveAvgPoolGrad(c, shape, dy.values as Float32Array) };
        for (const backend of ['wasm', 'cpu'] as const) {
          const dx = await run(backend, 'AvgPoolGrad', { dy, input: mixed }, attrs);
          expectClose(dx, expected);
          const forward = await run(backend, 'AvgPool', { x: mixed }, attrs);
          expect(dot(dx.values, mixed.values)).toBeCloseTo(dot(dy.values, forward.values), 4);
        }
      });
    }
  }

  it('the references catch the stock bugs (so these tests can fail)', async () => {
    const c = POOL_CASES[0];
    const shape = POOL_INPUTS[0];
    const attrs = { filterSize: c.k, strides: c.stride, pad: c.pad };
    const dy = random(poolWindows(c, shape).outShape, 13);
    const x: Data = { shape, values: random(shape, 14).values.map((v) => -Math.abs(v) - 0.25) };
    const output = await run('wasm', 'MaxPool', { x }, attrs);
    const stockMax = await run('wasm', '', { dy, input: x, output }, attrs, stock(stockWasm, 'MaxPoolGrad'));
    expect(maxError(stockMax.values, naiveMaxPoolGrad(c, shape, x.values as Float32Array, dy.values as Float32Array))).toBeGreaterThan(0.1);
    for (const [backend, stocks] of [
      ['wasm', stockWasm],
      ['cpu', stockCpu],
    ] as const) {
      const stockAvg = await run(backend, '', { dy, input: x }, attrs, stock(stocks, 'AvgPoolGrad'));
      expect(maxError(stockAvg.values, naiveAvgPoolGrad(c, shape, dy.values as Float32Array))).toBeGreaterThan(0.05);
    }
  });
});

describe('UnsortedSegmentSum matches stock cpu', () => {
  const ids = Int32Array.from([3, 0, 3, 5, 3, 1, 0, 5]);
  const cases: { name: string; x: Data; numSegments: number }[] = [
    { name: 'rows of 4, repeated ids, empty segments', x: random([8, 4], 21), numSegments: 7 },
    { name: 'rows of 2×3', x: random([8, 2, 3], 22), numSegments: 6 },
    { name: 'int32 values', x: { shape: [8, 3], values: Int32Array.from({ length: 24 }, (_, i) => (i * 7) % 11) }, numSegments: 6 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const inputs = { x: c.x, segmentIds: { shape: [8], values: ids } };
      const attrs = { numSegments: c.numSegments };
      const expected = await run('cpu', '', inputs, attrs, stock(stockCpu, 'UnsortedSegmentSum'));
      for (const backend of ['wasm', 'cpu'] as const) expectClose(await run(backend, 'UnsortedSegmentSum', inputs, attrs), expected, 1e-6);
    });
  }
});

describe('reluMask', () => {
  it('is 1 where a ReLU output is positive and 0 where it is 0, on wasm (Step) and cpu', async () => {
    const y = [0, 2.5, 0, 1e-30, 7, 0];
    for (const backend of ['wasm', 'cpu'] as const) {
      await tf.setBackend(backend);
      const mask = tf.tidy(() => reluMask(tf.tensor2d(y, [2, 3])));
      expect([...(await mask.data())], backend).toEqual([0, 1, 0, 1, 1, 0]);
      mask.dispose();
    }
  });
});

describe('BatchMatMul on wasm matches stock cpu', () => {
  const cases: { name: string; a: number[]; b: number[] }[] = [
    { name: 'rank 2', a: [5, 7], b: [7, 3] },
    { name: 'rank 3', a: [2, 5, 7], b: [2, 7, 3] },
    { name: 'rank 3, broadcast batch', a: [3, 5, 7], b: [1, 7, 3] },
    { name: 'rank 2, sides multiples of 4 (SIMD transpose)', a: [8, 12], b: [12, 4] },
    { name: 'rank 3, sides multiples of 4 (SIMD transpose)', a: [3, 4, 8], b: [3, 8, 12] },
    { name: 'rank 2, crossing 64×64 transpose tiles', a: [72, 8], b: [8, 68] },
    { name: 'rank 3 with batch 1, sides multiples of 4', a: [1, 8, 12], b: [1, 12, 4] },
    { name: 'rank 2, 7 rows (row tail of the 4-row blocks)', a: [7, 8], b: [8, 12] },
  ];
  const swapped = (shape: number[]): number[] => [...shape.slice(0, -2), shape[shape.length - 1], shape[shape.length - 2]];
  for (const c of cases) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        it(`${c.name}, transposeA=${transposeA}, transposeB=${transposeB}`, async () => {
          const inputs = {
            a: random(transposeA ? swapped(c.a) : c.a, 31),
            b: random(transposeB ? swapped(c.b) : c.b, 32),
          };
          const attrs = { transposeA, transposeB };
          const expected = await run('cpu', '', inputs, attrs, stock(stockCpu, 'BatchMatMul'));
          expectClose(await run('wasm', 'BatchMatMul', inputs, attrs), expected);
        });
      }
    }
  }
});

describe('wasm assembler', () => {
  it('imports unshared and shared memories (the multithreaded backend shares its heap)', () => {
    const builder = new FunctionBuilder('addOne', ['address']);
    const address = get(builder.params.address);
    const fn = { name: 'addOne', ...builder.assemble(storeV128(address, addF32x4(loadV128(address), splatF32(1)))) };
    for (const shared of [false, true]) {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(assembleModule([fn], shared)), { env: { memory } });
      const heap = new Float32Array(memory.buffer, 0, 8);
      heap.set([0, 0, 1, 2, 3, 4, 0, 0]);
      (instance.exports.addOne as (address: number) => void)(8);
      expect([...heap]).toEqual([0, 0, 2, 3, 4, 5, 0, 0]);
    }
  });
});
