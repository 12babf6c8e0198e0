/*
 * The fixed RNN (trial/fixed/rnn.ts): the released PTB cell, learning on a fixed batch, agreement
 * with the supernet's subgraph, the parameter count of the reference ptb_final, no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { RNN_ACTIVATIONS, rnnLooseEnds } from '../search-spaces/genotype.js';
import { ENAS_RNN_PTB } from '../search-spaces/known.js';
import { FixedRnn, fixedRnnShapes } from '../trial/fixed/rnn.js';
import { kjvWindows } from './kjv-tiny.js';
import { RnnSupernet } from '../trial/supernet/rnn.js';

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

describe('fixed RNN', () => {
  const { corpus, windowBatch } = kjvWindows(30, 4, 12);

  it('builds the released PTB cell with one weight matrix per node', () => {
    expect(rnnLooseEnds(ENAS_RNN_PTB.nodes)).toEqual([3, 4, 7, 9, 10, 11]);
    const model = new FixedRnn(ENAS_RNN_PTB, { vocabSize: corpus.vocabSize, hiddenSize: 16 });
    const names = ['embedding', 'w_prev', ...Array.from({ length: 11 }, (_, i) => `w_${i + 1}`)];
    expect([...model.state.keys()]).toEqual(names);
    const expected = fixedRnnShapes(model.config, 12);
    for (const [name, variable] of model.state) expect(variable.shape, name).toEqual(expected.get(name));
    expect(expected.get('embedding')).toEqual([corpus.vocabSize, 16]);
    expect(expected.get('w_prev')).toEqual([32, 32]);
    expect(expected.get('w_7')).toEqual([16, 32]);
    model.dispose();
  });

  it('scores a window near ln V at init and carries a [B, H] state', () => {
    const model = new FixedRnn(ENAS_RNN_PTB, { vocabSize: corpus.vocabSize, hiddenSize: 16 });
    const batch = windowBatch(0);
    const { loss } = model.evaluate(ENAS_RNN_PTB, batch);
    expect(loss).toBeGreaterThan(0.9 * Math.log(corpus.vocabSize));
    expect(loss).toBeLessThan(1.1 * Math.log(corpus.vocabSize));
    model.trainStep(ENAS_RNN_PTB, batch, 20);
    const carried = model.carriedState()!;
    expect(carried.shape).toEqual([4, 16]);
    carried.dispose();
    model.dispose();
  });

  it('lowers the loss on a fixed batch', () => {
    // At this tiny H, E's init gives near-zero logits and slow first steps; a wider init and no
    // dropout let 30 steps memorise one window.
    const keep = { embedding: 1, input: 1, hidden: 1, output: 1 };
    const model = new FixedRnn(ENAS_RNN_PTB, { vocabSize: corpus.vocabSize, hiddenSize: 32, initRange: 0.6, keep, seed: 3 });
    const batch = windowBatch(1);
    const before = model.evaluate(ENAS_RNN_PTB, batch).loss;
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      model.resetState();
      losses.push(model.trainStep(ENAS_RNN_PTB, batch, 5).loss);
    }
    expect(model.evaluate(ENAS_RNN_PTB, batch).loss).toBeLessThan(before - 2);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 2);
    model.dispose();
  });

  it("computes what the supernet without E's search-mode batch norms computes for the same cell and weights", () => {
    const H = 8;
    // A wide init, so that the loss depends on the weights well beyond the 1e-5 tolerance.
    const supernet = new RnnSupernet({ vocabSize: corpus.vocabSize, hiddenSize: H, nodes: 12, batchNorm: false, initRange: 1, seed: 5 });
    const fixed = new FixedRnn(ENAS_RNN_PTB, { vocabSize: corpus.vocabSize, hiddenSize: H });
    const rows = (name: string, first: number, count: number): tf.Tensor =>
      tf.slice(supernet.state.get(name)!, [first, 0], [count, -1]);
    const F = RNN_ACTIVATIONS.length;
    tf.tidy(() => {
      fixed.state.get('embedding')!.assign(supernet.state.get('embedding')!);
      const [first, ...rest] = ENAS_RNN_PTB.nodes;
      fixed.state.get('w_prev')!.assign(rows('w_prev', RNN_ACTIVATIONS.indexOf(first!.act) * 2 * H, 2 * H));
      rest.forEach((node, i) =>
        fixed.state.get(`w_${i + 1}`)!.assign(rows(`w_skip_${i + 1}`, (node.prev * F + RNN_ACTIVATIONS.indexOf(node.act)) * H, H)),
      );
    });
    const batch = windowBatch(2);
    const loss = supernet.evaluate(ENAS_RNN_PTB, batch).loss;
    expect(Math.abs(loss - Math.log(corpus.vocabSize))).toBeGreaterThan(0.005);
    expect(fixed.evaluate(ENAS_RNN_PTB, batch).loss).toBeCloseTo(loss, 5);
    supernet.dispose();
    fixed.dispose();
  });

  it('has ≈22.0M parameters at the size of the reference ptb_final (H=748, vocabulary 10k; ENAS.md §4)', () => {
    const shapes = fixedRnnShapes({ vocabSize: 10_000, hiddenSize: 748 }, ENAS_RNN_PTB.nodes.length);
    const total = [...shapes.values()].reduce((sum, shape) => sum + size(shape), 0);
    // 10000·748 + 1496·1496 + 11·748·1496
    expect(total).toBe(22_027_104);
    expect(total / 1e6).toBeCloseTo(22.0, 1);
  });

  it('frees every intermediate tensor', () => {
    const model = new FixedRnn(ENAS_RNN_PTB, { vocabSize: corpus.vocabSize, hiddenSize: 16 });
    const windows = [0, 1, 2].map(windowBatch);
    model.trainStep(ENAS_RNN_PTB, windows[0]!, 20);
    const settled = tf.memory().numTensors;
    for (const w of windows) {
      model.trainStep(ENAS_RNN_PTB, w, 20);
      model.evaluate(ENAS_RNN_PTB, w);
    }
    expect(tf.memory().numTensors).toBe(settled);
    model.dispose();
    expect(tf.memory().numTensors).toBe(settled - 1 - model.state.size);
  });
});
