/*
 * The fixed retrain-time networks (trial/fixed/{macro,micro}.ts): the released micro cells and a
 * random macro architecture build at small sizes, give logits of the right shape, and one step
 * lowers the loss on a fixed batch; the reference micro_final configuration has the parameter
 * count of the reference code (ENAS.md §4: ≈3.89M + ≈0.49M aux head).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '../common/random.js';
import type { MacroGenotype, MicroGenotype } from '../search-spaces/genotype.js';
import { ENAS_MICRO_CIFAR10 } from '../search-spaces/known.js';
import { decisions, DEFAULT_SPECS, fromTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend, type BackendName } from '../trial/backend.js';
import { MacroFixedNet } from '../trial/fixed/macro.js';
import { MicroFixedNet } from '../trial/fixed/micro.js';
import type { Batch } from '../trial/model.js';
import type { ImageClassifier } from '../trial/nn.js';
import { batchAt, fashionTiny, type TinyImages } from './fashion-tiny.js';

let data: TinyImages;
let batch: Batch;

beforeAll(async () => {
  // wasm by default (with the project's training kernels); TEST_BACKEND=cpu checks the same on the reference backend.
  await setupBackend((process.env['TEST_BACKEND'] as BackendName | undefined) ?? 'wasm');
  data = fashionTiny(4);
  batch = batchAt(data, 0, 16);
});

afterAll(() => tf.dispose([data.x, data.y, batch.x, batch.y]));

/** Logits shape, then two steps on the same batch: the second sees the loss after the first update. */
function checkLearnsOneStep<G extends MacroGenotype | MicroGenotype>(model: ImageClassifier<G>, g: G): void {
  const logits = model.logits(g, batch.x as tf.Tensor4D);
  expect(logits.shape).toEqual([16, 10]);
  logits.dispose();
  const first = model.trainStep(g, batch, 0.02);
  const second = model.trainStep(g, batch, 0.02);
  expect(second.loss).toBeLessThan(first.loss);
}

const trainableCount = (model: ImageClassifier<never>, filter: (name: string) => boolean): number =>
  [...model.state].filter(([name, v]) => v.trainable && filter(name)).reduce((n, [, v]) => n + v.size, 0);

describe('fixed micro network', () => {
  it('the released cells build, give [B, classes] logits, and one step lowers the loss', () => {
    const model = new MicroFixedNet(ENAS_MICRO_CIFAR10, { inputShape: [14, 14, 1], channels: 8, layers: 3, keepProb: 1 });
    checkLearnsOneStep(model, ENAS_MICRO_CIFAR10);
    expect(model.state.get('global_step')!.dataSync()[0]).toBe(2);
    model.dispose();
  });

  it('a reduction cell that leaves a cell input unused reduces it before the concat', () => {
    const unusedInput: MicroGenotype = {
      ...ENAS_MICRO_CIFAR10,
      reduce: ENAS_MICRO_CIFAR10.reduce.map((node) => ({ ...node, inputs: node.inputs.map((i) => (i === 0 ? 1 : i)) as [number, number] })),
    };
    const model = new MicroFixedNet(unusedInput, { inputShape: [14, 14, 1], channels: 8, layers: 3, keepProb: 1 });
    expect(model.state.has('cell_1/output/reduce_from_0/path1/w')).toBe(true);
    checkLearnsOneStep(model, unusedInput);
    model.dispose();
  });

  it('the reference micro_final configuration has ≈3.89M parameters plus ≈0.49M in the aux head', () => {
    const model = new MicroFixedNet(ENAS_MICRO_CIFAR10);
    const main = trainableCount(model as ImageClassifier<never>, (name) => !name.startsWith('aux_head/'));
    const aux = trainableCount(model as ImageClassifier<never>, (name) => name.startsWith('aux_head/'));
    expect(main).toBeGreaterThan(3.85e6);
    expect(main).toBeLessThan(3.93e6);
    expect(aux).toBeGreaterThan(0.48e6);
    expect(aux).toBeLessThan(0.5e6);
    model.dispose();
  });
});

describe('fixed macro network', () => {
  const spec = { ...DEFAULT_SPECS.macro, layers: 6 } as SpaceSpec;
  const rng = new Random(4);
  const g = fromTokens(spec, decisions(spec).map((d) => rng.int(d.choices.length))) as MacroGenotype;

  it('a random architecture builds, gives [B, classes] logits, and one step lowers the loss', () => {
    const model = new MacroFixedNet(g, { inputShape: [14, 14, 1], channels: 8, keepProb: 1 });
    checkLearnsOneStep(model, g);
    model.dispose();
  });

  it('doubles channels at the pool layers and reduces only the history entries read later', () => {
    const model = new MacroFixedNet(g, { inputShape: [14, 14, 1], channels: 8 });
    // Pool layers {1, 3} for L = 6: C = 8, 16, 32.
    expect(model.state.get('layer_0/' + g.layers[0]!.op + '/inp_conv/w')!.shape).toEqual([8, 8]);
    expect(model.state.get('layer_2/skip/w')!.shape[1]).toBe(16);
    expect(model.state.get('fc/w')!.shape).toEqual([32, 10]);
    // Entry j of [stem, out_0, …] is read by layer i as its input (i = j) or through skip bit j.
    const reads = (j: number, after: number) => g.layers.some((layer, i) => i > after && (i === j || layer.skips[j] === 1));
    for (const at of [1, 3])
      for (let j = 0; j <= at + 1; j++) expect(model.state.has(`pool_at_${at}/from_${j}/path1/w`)).toBe(reads(j, at));
    model.dispose();
  });
});
