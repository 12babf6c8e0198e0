/*
 * The FLOP counts of bench/flops.ts, which `bench supernet` turns into achieved GFLOP/s, against
 * the convolution and matMul kernels a forward pass really runs (tf.profile's shapes), on tiny
 * supernets and random architectures: a layout change in trial/supernet/* that the counter does
 * not follow fails here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '../common/random.js';
import type { MacroGenotype, MicroGenotype, RnnGenotype } from '../search-spaces/genotype.js';
import { DEFAULT_SPECS, type SpaceSpec } from '../search-spaces/spaces.js';
import { auxHeadMacs, macroForwardFlops, microForwardFlops, rnnForwardFlopsPerToken } from '../bench/flops.js';
import { setupBackend } from '../trial/backend.js';
import { AuxHead, Constants, Pass, Scope, VariableStore } from '../trial/nn.js';
import { MacroSupernet, type MacroSupernetConfig } from '../trial/supernet/macro.js';
import { MicroSupernet, type MicroSupernetConfig } from '../trial/supernet/micro.js';
import { RnnSupernet } from '../trial/supernet/rnn.js';
import { randomArc } from './random-arch.js';

const BATCH = 2;
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Multiply-adds of the convolution and matMul kernels `f` runs. 1×1 depthwise kernels are batch
 * norm's per-channel affine maps and [1, m]·[m, n] products are means (the RNN's batch norms):
 * neither is a layer of the convention.
 */
async function tracedMacs(f: () => void): Promise<number> {
  const info = await tf.profile(f);
  let macs = 0;
  for (const k of info.kernels) {
    const [a, b] = k.inputShapes as number[][];
    const out = k.outputShapes[0] as number[];
    if (k.name === 'Conv2D') macs += size(out) * b![0]! * b![1]! * b![2]!;
    else if (k.name === 'DepthwiseConv2dNative' || k.name === 'FusedDepthwiseConv2D') {
      if (b![0]! * b![1]! > 1) macs += size(out) * b![0]! * b![1]!;
    } else if (k.name === 'BatchMatMul' || k.name === '_FusedMatMul') {
      // The shared dimension is a's other one (a may be transposed, and broadcast over b's batch).
      const m = out.at(-2)!;
      if (m > 1) macs += size(out) * (a!.at(-2) === m ? a!.at(-1)! : a!.at(-2)!);
    }
  }
  return macs;
}

const images = (shape: [number, number, number]) => ({
  x: tf.randomNormal([BATCH, ...shape]),
  y: tf.tensor1d([1, 3], 'int32'),
});

beforeAll(async () => {
  await setupBackend('cpu');
});

describe('bench/flops.ts', () => {
  it('micro: the evaluation forward pass of random cells, and the aux head, as traced', async () => {
    // 5 cells (N R N R N) at 14×14 → 7×7 → 4×4, 3 nodes: every calibration case occurs.
    const config: Partial<MicroSupernetConfig> = { inputShape: [14, 14, 1], channels: 4, layers: 3, nodes: 3, seed: 1 };
    const model = new MicroSupernet(config);
    const spec = { ...DEFAULT_SPECS.micro, nodes: 3 } as SpaceSpec;
    const batch = images([14, 14, 1]);
    for (const seed of [1, 2, 3, 4]) {
      const g = randomArc<MicroGenotype>(spec, seed);
      const traced = await tracedMacs(() => void model.evaluate(g, batch));
      expect(microForwardFlops(g, model.config, false)).toBe((2 * traced) / BATCH);
    }
    // Training adds exactly the aux head on the 4×4×16 output of the cell after the second reduction.
    const g = randomArc<MicroGenotype>(spec, 5);
    expect(microForwardFlops(g, model.config, true) - microForwardFlops(g, model.config, false)).toBe(
      2 * auxHeadMacs({ height: 4, width: 4, channels: 16 }, 10),
    );
    const head = new AuxHead(new Scope(new VariableStore(new Random(0))), { height: 7, width: 7, channels: 6 }, 10);
    const x = tf.randomNormal([BATCH, 7, 7, 6]) as tf.Tensor4D;
    const traced = await tracedMacs(() => void tf.tidy(() => head.apply(x, new Pass(false, new Random(0), new Constants()))));
    expect(auxHeadMacs({ height: 7, width: 7, channels: 6 }, 10)).toBe(traced / BATCH);
    tf.dispose([batch.x, batch.y, x]);
    model.dispose();
  });

  it('macro: the forward pass of random architectures, lazy reductions included, as traced', async () => {
    const config: Partial<MacroSupernetConfig> = { inputShape: [9, 9, 1], channels: 4, layers: 6, seed: 1 };
    const model = new MacroSupernet(config);
    const spec = { ...DEFAULT_SPECS.macro, layers: 6 } as SpaceSpec;
    const batch = images([9, 9, 1]);
    const counts = new Set<number>();
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const g = randomArc<MacroGenotype>(spec, seed);
      const traced = await tracedMacs(() => void model.evaluate(g, batch));
      const counted = macroForwardFlops(g, model.config);
      expect(counted).toBe((2 * traced) / BATCH);
      counts.add(counted);
    }
    // The architectures differ in cost, so the check saw more than one layout.
    expect(counts.size).toBeGreaterThan(1);
    tf.dispose([batch.x, batch.y]);
    model.dispose();
  });

  it('rnn: the same per token for every cell, as traced', async () => {
    const config = { vocabSize: 50, hiddenSize: 6, nodes: 4 };
    const model = new RnnSupernet(config);
    const [B, T] = [2, 3];
    const batch = { x: tf.tensor2d([1, 2, 3, 4, 5, 6], [B, T], 'int32'), y: tf.tensor2d([2, 3, 4, 5, 6, 7], [B, T], 'int32') };
    for (const seed of [1, 2]) {
      const g = randomArc<RnnGenotype>({ ...DEFAULT_SPECS.rnn, nodes: 4 } as SpaceSpec, seed);
      const traced = await tracedMacs(() => void model.evaluate(g, batch));
      expect(rnnForwardFlopsPerToken(config)).toBe((2 * traced) / (B * T));
    }
    tf.dispose([batch.x, batch.y]);
    model.dispose();
  });
});
