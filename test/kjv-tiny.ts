/*
 * Tiny real text for RNN tests: the opening verses of the KJV corpus in ../shared (PTB format),
 * as ids over their own small vocabulary.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll } from 'vitest';
import { setupBackend } from '../trial/backend.js';
import { TextBatcher } from '../trial/data/index.js';
import type { Batch } from '../trial/model.js';

/** CI checks the project out with ../shared beside it. */
const KJV_TRAIN = fileURLToPath(new URL('../../shared/data/kjv-ptb/kjv.train.txt', import.meta.url));

/** The first `lines` verses of the KJV training split, `<eos>` after each (~200 words for 30 lines). */
export function kjvOpening(lines: number): { tokens: Int32Array; vocabSize: number } {
  const words = readFileSync(KJV_TRAIN, 'utf8')
    .split('\n')
    .slice(0, lines)
    .flatMap((line) => [...line.split(/\s+/).filter((w) => w !== ''), '<eos>']);
  const ids = new Map<string, number>();
  const tokens = Int32Array.from(words, (w) => {
    if (!ids.has(w)) ids.set(w, ids.size);
    return ids.get(w)!;
  });
  return { tokens, vocabSize: ids.size };
}

/**
 * For a describe block (call it inside one): the KJV opening cut into windows of batch×bptt
 * tokens on the wasm backend. `windowBatch(i)` is window i; it and every batch passed to `keepBatch`
 * are disposed after the block.
 */
export function kjvWindows(lines: number, batch: number, bptt: number) {
  const corpus = kjvOpening(lines);
  const batcher = new TextBatcher(corpus.tokens, batch, bptt);
  const kept: Batch[] = [];
  beforeAll(async () => {
    await setupBackend('wasm');
  });
  afterAll(() => {
    for (const { x, y } of kept) tf.dispose([x, y]);
  });
  const keep = (b: Batch): Batch => {
    kept.push(b);
    return b;
  };
  return { corpus, keepBatch: keep, windowBatch: (i: number): Batch => keep(batcher.window(i)) };
}
