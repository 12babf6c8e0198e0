/*
 * The rnn path of the embedded runner end to end on a slice of the KJV corpus: search, derive,
 * retrain, export, and the export reloading with the trained language model's losses.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { RNN_ACTIVATIONS } from '../search-spaces/genotype.js';
import type { SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { loadCorpus, TextBatcher } from '../trial/data/index.js';
import { BEST_JSON } from '../embedded/architectures.js';
import { loadExportedModel } from '../embedded/export.js';
import { runRetrain } from '../embedded/retrain.js';
import { runSearch } from '../embedded/search.js';
import { readHistory } from '../embedded/history.js';
import { resolveSearchSettings } from '../embedded/settings.js';
import { freshDir, KJV_PTB, quietIo, retrainSettings, trainedNetwork, writeConfig } from './embedded-fixtures.js';

const RNN: SpaceSpec = { space: 'rnn', nodes: 3, ops: RNN_ACTIVATIONS };

beforeAll(async () => {
  await setupBackend('wasm');
});

describe('rnn', () => {
  it('searches, derives, retrains and exports a language model', async () => {
    const config = writeConfig(RNN, `--dataset ptb --data-dir ${KJV_PTB}`);
    const rnnSettings = resolveSearchSettings(config, { preset: 'tiny', epochs: 1, trial: {} }).settings;
    const run = freshDir('rnn');
    const searched = await runSearch(run, rnnSettings, false, quietIo());
    expect(searched.derived!.result.ranking[0]!.score.perplexity).toBeGreaterThan(1);
    const dir = freshDir('rnn-retrain');
    const outcome = await runRetrain(dir, retrainSettings(join(run, BEST_JSON)), false, quietIo());
    expect(outcome.test!.perplexity).toBeGreaterThan(1);
    const exported = loadExportedModel(dir);
    expect(exported.preprocessing.kind).toBe('text');
    const { network, genotype } = trainedNetwork(dir);
    const corpus = loadCorpus(KJV_PTB);
    const window = new TextBatcher(corpus.test.subarray(0, 2000), 4, 35).window(0);
    expect(exported.evaluate(window).loss).toBe(network.evaluate(genotype, window).loss);
    tf.dispose([window.x, window.y]);
    network.dispose();
    exported.dispose();
  });

  it('searches over 2 worker threads, each replica carrying its rows\' hidden state across windows and zeroing it per epoch', async () => {
    const config = writeConfig(RNN, `--dataset ptb --data-dir ${KJV_PTB}`);
    const settings = resolveSearchSettings(config, { preset: 'tiny', epochs: 2, trial: {} }).settings;
    const run = freshDir('rnn-workers');
    const searched = await runSearch(run, settings, false, quietIo(), 2);
    expect(searched).toMatchObject({ finished: true, epochs: 2 });
    const epochs = readHistory(join(run, 'history.jsonl')).filter((r) => r.type === 'epoch');
    expect(epochs).toHaveLength(2);
    for (const epoch of epochs) expect(epoch.type === 'epoch' && Number.isFinite(epoch.trainLoss)).toBe(true);
    expect(searched.derived!.result.ranking[0]!.score.perplexity).toBeGreaterThan(1);
  });
});
