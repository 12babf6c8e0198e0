/*
 * Micro-benchmark of our training kernels (trial/kernels) at the shapes of ENAS child
 * training: batch 64 at 28×28 / 14×14 / 7×7 with 20 / 40 / 80 channels, and the RNN's
 * 1120-token embedding and tied-softmax matmuls. Each line is the median of several timed calls
 * after a warm-up, next to the stock kernel where one exists.
 * Run: node dist/bench/kernels.js [--backend wasm|cpu] [--batch N] [--runs N]
 * (cpu is a reference backend: its default batch is 4, since its stock kernels take seconds.)
 */
import { loadavg } from 'node:os';
import tf = require('@tensorflow/tfjs-core');
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { setupBackend } from '../trial/backend.js';
import { stockKernel, trainingKernelNames } from '../trial/kernels/index.js';

interface Case {
  kernel: string;
  label: string;
  inputs: () => Record<string, tf.Tensor>;
  attrs: object;
  /** Skip the stock kernel (it would take minutes). */
  noStock?: boolean;
}

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

function backendOption(): 'wasm' | 'cpu' {
  const name = option('--backend') ?? 'wasm';
  if (name !== 'wasm' && name !== 'cpu') throw new Error(`--backend must be wasm or cpu, got ${name}`);
  return name;
}

const BACKEND = backendOption();
const RUNS = Number(option('--runs') ?? 7);
const BATCH = Number(option('--batch') ?? (BACKEND === 'cpu' ? 4 : 64));
const WARMUP = 2;

const normal = (shape: number[]): tf.Tensor => tf.randomNormal(shape);
const relu = (shape: number[]): tf.Tensor => tf.tidy(() => tf.relu(tf.randomNormal(shape)));
const ids = (count: number, vocabulary: number): tf.Tensor =>
  tf.tensor1d(Int32Array.from({ length: count }, () => Math.floor(Math.random() * vocabulary)), 'int32');

function convCases(): Case[] {
  const cases: Case[] = [];
  const sizes: [number, number][] = [
    [28, 20],
    [14, 40],
    [7, 80],
  ];
  for (const [size, channels] of sizes) {
    const x = [BATCH, size, size, channels];
    const at = `${size}×${size}×${channels}`;
    cases.push(
      {
        kernel: 'Conv2DBackpropFilter',
        label: `1×1 ${channels}→${channels} @${at}`,
        inputs: () => ({ x: relu(x), dy: normal(x) }),
        attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [1, 1, channels, channels] },
      },
      {
        kernel: 'Conv2DBackpropInput',
        label: `1×1 ${channels}→${channels} @${at}`,
        inputs: () => ({ dy: normal(x), filter: normal([1, 1, channels, channels]) }),
        attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: x },
      },
    );
    for (const k of [3, 5]) {
      const depthwise = { strides: 1, pad: 'same', dilations: 1 };
      cases.push(
        {
          kernel: 'DepthwiseConv2dNativeBackpropFilter',
          label: `${k}×${k} @${at}`,
          inputs: () => ({ x: relu(x), dy: normal(x) }),
          attrs: { ...depthwise, filterShape: [k, k, channels, 1] },
        },
        {
          kernel: 'DepthwiseConv2dNativeBackpropInput',
          label: `${k}×${k} @${at}`,
          inputs: () => ({ dy: normal(x), filter: normal([k, k, channels, 1]) }),
          attrs: { ...depthwise, inputShape: x },
        },
      );
    }
  }
  const x28 = [BATCH, 28, 28, 20];
  const x14 = [BATCH, 14, 14, 20];
  for (const k of [3, 5]) {
    cases.push(
      {
        kernel: 'DepthwiseConv2dNativeBackpropFilter',
        label: `${k}×${k} stride 2 @28×28×20`,
        inputs: () => ({ x: relu(x28), dy: normal(x14) }),
        attrs: { strides: 2, pad: 'same', dilations: 1, filterShape: [k, k, 20, 1] },
      },
      {
        kernel: 'DepthwiseConv2dNativeBackpropInput',
        label: `${k}×${k} stride 2 @28×28×20`,
        inputs: () => ({ dy: normal(x14), filter: normal([k, k, 20, 1]) }),
        attrs: { strides: 2, pad: 'same', dilations: 1, inputShape: x28 },
      },
    );
  }
  // The macro space's conv ops: 36 channels (ENAS.md §1a search).
  const x36 = [BATCH, 28, 28, 36];
  for (const k of [3, 5]) {
    cases.push(
      {
        kernel: 'Conv2DBackpropFilter',
        label: `${k}×${k} 36→36 @28×28×36 (macro)`,
        inputs: () => ({ x: relu(x36), dy: normal(x36) }),
        attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [k, k, 36, 36] },
      },
      {
        kernel: 'Conv2DBackpropInput',
        label: `${k}×${k} 36→36 @28×28×36 (macro)`,
        inputs: () => ({ dy: normal(x36), filter: normal([k, k, 36, 36]) }),
        attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: x36 },
      },
    );
  }
  cases.push(
    {
      kernel: 'Conv2DBackpropFilter',
      label: '3×3 1→20 stem @28×28×1',
      inputs: () => ({ x: normal([BATCH, 28, 28, 1]), dy: normal(x28) }),
      attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 1, 20] },
    },
    {
      kernel: 'Conv2DBackpropFilter',
      label: '1×1 20→20 stride 2 (factorized reduce)',
      inputs: () => ({ x: relu(x28), dy: normal(x14) }),
      attrs: { strides: 2, pad: 'valid', dataFormat: 'NHWC', filterShape: [1, 1, 20, 20] },
    },
    {
      kernel: 'Conv2DBackpropInput',
      label: '1×1 20→20 stride 2 (factorized reduce)',
      inputs: () => ({ dy: normal(x14), filter: normal([1, 1, 20, 20]) }),
      attrs: { strides: 2, pad: 'valid', dataFormat: 'NHWC', inputShape: x28 },
    },
  );
  return cases;
}

function poolCases(): Case[] {
  const cases: Case[] = [];
  for (const [size, channels, stride] of [
    [28, 20, 1],
    [14, 40, 1],
    [7, 80, 1],
    [28, 20, 2],
  ]) {
    const x = [BATCH, size, size, channels];
    const attrs = { filterSize: 3, strides: stride, pad: 'same' };
    const label = `3×3 stride ${stride} same @${size}×${size}×${channels}`;
    cases.push(
      {
        kernel: 'MaxPoolGrad',
        label,
        inputs: () => {
          const input = normal(x);
          const output = tf.maxPool(input as tf.Tensor4D, 3, stride, 'same');
          return { dy: normal(output.shape), input, output };
        },
        attrs,
      },
      {
        kernel: 'AvgPoolGrad',
        label,
        inputs: () => {
          const input = normal(x);
          const outShape = tf.backend_util.computePool2DInfo(x as [number, number, number, number], 3, stride, 1, 'same').outShape;
          return { dy: normal(outShape), input };
        },
        attrs,
      },
    );
  }
  return cases;
}

function rnnCases(): Case[] {
  const tokens = 1120;
  return [
    {
      kernel: 'UnsortedSegmentSum',
      label: `embedding grad: ${tokens} tokens → 10000×200`,
      inputs: () => ({ x: normal([tokens, 200]), segmentIds: ids(tokens, 10000) }),
      attrs: { numSegments: 10000 },
      noStock: true,
    },
    {
      kernel: 'BatchMatMul',
      label: 'logits h·Eᵀ [1120,200]×[10000,200]ᵀ',
      inputs: () => ({ a: normal([tokens, 200]), b: normal([10000, 200]) }),
      attrs: { transposeA: false, transposeB: true },
    },
    {
      kernel: 'BatchMatMul',
      label: 'dE = dlogitsᵀ·h [1120,10000]ᵀ×[1120,200]',
      inputs: () => ({ a: normal([tokens, 10000]), b: normal([tokens, 200]) }),
      attrs: { transposeA: true, transposeB: false },
    },
    {
      kernel: 'BatchMatMul',
      label: 'cell dW = xᵀ·dy [32,400]ᵀ×[32,800]',
      inputs: () => ({ a: normal([32, 400]), b: normal([32, 800]) }),
      attrs: { transposeA: true, transposeB: false },
    },
    {
      kernel: 'BatchMatMul',
      label: 'cell dx = dy·Wᵀ [32,800]×[400,800]ᵀ',
      inputs: () => ({ a: normal([32, 800]), b: normal([400, 800]) }),
      attrs: { transposeA: false, transposeB: true },
    },
    {
      kernel: 'BatchMatMul',
      label: 'pointwise x·W [50176,20]×[20,20]',
      inputs: () => ({ a: normal([BATCH * 784, 20]), b: normal([20, 20]) }),
      attrs: { transposeA: false, transposeB: false },
    },
    {
      kernel: 'BatchMatMul',
      label: 'pointwise dx = dy·Wᵀ [50176,20]×[20,20]ᵀ',
      inputs: () => ({ a: normal([BATCH * 784, 20]), b: normal([20, 20]) }),
      attrs: { transposeA: false, transposeB: true },
    },
    {
      kernel: 'BatchMatMul',
      label: 'pointwise dW = xᵀ·dy [50176,20]ᵀ×[50176,20]',
      inputs: () => ({ a: normal([BATCH * 784, 20]), b: normal([BATCH * 784, 20]) }),
      attrs: { transposeA: true, transposeB: false },
    },
    {
      kernel: 'BatchMatMul',
      label: 'pointwise x·W [3136,80]×[80,80]',
      inputs: () => ({ a: normal([BATCH * 49, 80]), b: normal([80, 80]) }),
      attrs: { transposeA: false, transposeB: false },
    },
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/**
 * Median wall-clock and CPU ms per call of `call` after a warm-up. Every call gets fresh copies
 * of `inputs` (copied untimed): tfjs-wasm caches XNNPACK operators, with their packed weights,
 * per weight tensor, so re-running on the same tensors would hide the packing that a training
 * step pays on every call. CPU time is this process's, which other processes on the shared
 * cores inflate far less than wall time.
 */
function time(inputs: Record<string, tf.Tensor>, call: (fresh: Record<string, tf.Tensor>) => void): { wall: number; cpu: number } {
  const once = (): { wall: number; cpu: number } => {
    const fresh = Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, tf.clone(t)]));
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    call(fresh);
    const wall = performance.now() - start;
    const used = process.cpuUsage(cpuStart);
    tf.dispose(Object.values(fresh));
    return { wall, cpu: (used.user + used.system) / 1000 };
  };
  for (let i = 0; i < WARMUP; i++) once();
  const samples = Array.from({ length: RUNS }, once);
  return { wall: median(samples.map((s) => s.wall)), cpu: median(samples.map((s) => s.cpu)) };
}

async function main(): Promise<void> {
  const info = await setupBackend(BACKEND);
  const ours = new Set(trainingKernelNames(BACKEND));
  const load = () => loadavg()[0].toFixed(2);
  console.log(`backend: ${info.detail}; batch ${BATCH}; median of ${RUNS} calls after ${WARMUP} warm-up calls; load average ${load()}`);
  console.log('wall = elapsed ms per call, cpu = this process\'s CPU ms per call (robust to other load); fresh input tensors per call\n');
  const backend = tf.backend();
  const rows: string[][] = [];
  for (const c of [...convCases(), ...poolCases(), ...rnnCases()].filter((c) => ours.has(c.kernel))) {
    const inputs = c.inputs();
    const oursTime = time(inputs, (fresh) => (tf.engine().runKernel(c.kernel, fresh, c.attrs as NamedAttrMap) as tf.Tensor).dispose());
    const stock = c.noStock ? undefined : stockKernel(c.kernel, BACKEND);
    const stockTime = stock
      ? time(inputs, (fresh) => {
          const out = stock.kernelFunc({ inputs: fresh, backend, attrs: c.attrs as NamedAttrMap }) as TensorInfo;
          backend.disposeData(out.dataId);
        })
      : undefined;
    tf.dispose(Object.values(inputs));
    rows.push([
      c.kernel,
      c.label,
      oursTime.wall.toFixed(2),
      oursTime.cpu.toFixed(2),
      stockTime ? stockTime.wall.toFixed(2) : '—',
      stockTime ? stockTime.cpu.toFixed(2) : '—',
      stockTime ? `${(stockTime.cpu / oursTime.cpu).toFixed(1)}×` : '',
    ]);
  }
  const header = ['kernel', 'case', 'ours wall', 'ours cpu', 'stock wall', 'stock cpu', 'speed-up (cpu)'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (row: string[]): string =>
    `| ${row.map((cell, column) => (column >= 2 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, column) => (column >= 2 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
  for (const row of rows) console.log(line(row));
  console.log(`\nlive tensors after the run: ${tf.memory().numTensors}; load average ${load()}`);
}

await main();
