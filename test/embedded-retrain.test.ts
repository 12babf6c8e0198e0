/*
 * Derive and retrain on tiny data: derive keeps the best-scoring sample; retraining trains the
 * fixed network, reports its test score, exports it, and the export reloads with the trained
 * network's predictions; a retraining stopped mid-way resumes to the same network.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { MICRO_OPS } from '../search-spaces/genotype.js';
import { toTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { channelStats, evaluationBatches, loadFashionMnist, tinySubset } from '../trial/data/index.js';
import { BEST_JSON, readArchitectureFile, type ArchitectureFile } from '../embedded/architectures.js';
import { deriveFromRun } from '../embedded/derive.js';
import { loadExportedModel } from '../embedded/export.js';
import { RETRAIN_PRESETS } from '../embedded/presets.js';
import { randomArchitecture, readRetrainSettings, runRetrain } from '../embedded/retrain.js';
import { runSearch } from '../embedded/search.js';
import { resolveSearchSettings, type SearchSettings } from '../embedded/settings.js';
import type { ImageClassifier } from '../trial/cnn.js';
import type { Genotype } from '../search-spaces/genotype.js';
import { freshDir, quietIo, retrainSettings, stopAfter, trainedNetwork, writeConfig } from './embedded-fixtures.js';
import { fashionTinyDir } from './fashion-tiny.js';

const MICRO: SpaceSpec = { space: 'micro', nodes: 2, ops: MICRO_OPS };

let searchDir: string;
let settings: SearchSettings;

beforeAll(async () => {
  await setupBackend('wasm');
  settings = resolveSearchSettings(writeConfig(MICRO, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`), { preset: 'tiny', epochs: 1, trial: {} }).settings;
  searchDir = freshDir('derive');
  await runSearch(searchDir, settings, false, quietIo());
});

describe('derive', () => {
  it('keeps the best-scoring of the sampled architectures', async () => {
    const derived = await deriveFromRun(searchDir, settings, { samples: 6, validBatches: null }, stopAfter());
    const rewards = derived!.result.ranking.map((entry) => entry.score.reward);
    expect(rewards).toEqual([...rewards].sort((a, b) => b - a));
    const best = JSON.parse(readFileSync(join(searchDir, BEST_JSON), 'utf8')) as ArchitectureFile;
    expect(best.tokens).toEqual(derived!.result.ranking[0]!.tokens);
    expect(best.score.reward).toBe(Math.max(...rewards));
    expect(best.scoredOn).toMatch(/whole validation split/);
  });
});

describe('retrain', () => {
  let dir: string;
  let outcome: Awaited<ReturnType<typeof runRetrain>>;

  beforeAll(async () => {
    dir = freshDir('retrain');
    outcome = await runRetrain(dir, retrainSettings(join(searchDir, BEST_JSON)), false, quietIo());
  });

  it('trains, reports test accuracy and exports', () => {
    expect(outcome.finished).toBe(true);
    expect(outcome.test!.accuracy).toBeGreaterThanOrEqual(0);
    expect(outcome.test!.accuracy).toBeLessThanOrEqual(1);
    const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
    expect(result.test.accuracy).toBe(outcome.test!.accuracy);
    const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(manifest.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(manifest.weightsManifest[0].weights[0]).toEqual({ name: expect.any(String), shape: expect.any(Array), dtype: 'float32' });
    expect(readArchitectureFile(join(dir, 'architecture.json')).genotype).toEqual(readRetrainSettings(dir).genotype);
  });

  it('reloads the export with the trained network\'s predictions and test accuracy', () => {
    const exported = loadExportedModel(dir);
    const { network, genotype } = trainedNetwork(dir);
    const { train, test } = loadFashionMnist(fashionTinyDir());
    const recipe = RETRAIN_PRESETS.tiny.micro;
    const stats = channelStats(tinySubset(train, recipe.subset!));
    const testSet = tinySubset(test, recipe.subset!);
    let correct = 0;
    for (const batch of evaluationBatches(testSet, stats, recipe.evalBatchSize)) {
      const expected = (network as unknown as ImageClassifier<Genotype>).logits(genotype, batch.x as tf.Tensor4D);
      const actual = exported.logits(batch.x as tf.Tensor4D);
      expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
      correct += exported.evaluate(batch).accuracy! * batch.y.shape[0]!;
      tf.dispose([expected, actual, batch.x, batch.y]);
    }
    expect(correct / testSet.count).toBeCloseTo(outcome.test!.accuracy!, 6);
    const classes = exported.predictClasses(testSet.images.subarray(0, 784 * 3), 3);
    expect(classes).toHaveLength(3);
    // More images than one pass takes (100): sliced, with the single pass's scores (moving BN statistics).
    const many = tf.randomNormal([130, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const [sliced, single] = [exported.logits(many), (network as unknown as ImageClassifier<Genotype>).logits(genotype, many)];
    expect(sliced.shape).toEqual([130, 10]);
    const [a, b] = [sliced.dataSync(), single.dataSync()];
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 4));
    tf.dispose([many, sliced, single]);
    network.dispose();
    exported.dispose();
  });

  it('resumes a stopped retraining to the same network', async () => {
    const stoppedDir = freshDir('retrain-stop');
    const settingsHere = retrainSettings(join(searchDir, BEST_JSON));
    const stopped = await runRetrain(stoppedDir, settingsHere, false, quietIo(stopAfter(3)));
    expect(stopped.finished).toBe(false);
    const resumed = await runRetrain(stoppedDir, readRetrainSettings(stoppedDir), true, quietIo());
    expect(resumed.test).toEqual(outcome.test);
    expect(readFileSync(join(stoppedDir, 'weights.bin'))).toEqual(readFileSync(join(dir, 'weights.bin')));
  });

  it('draws a uniformly random architecture of the same space for the baseline', () => {
    const a = randomArchitecture(MICRO, 1);
    expect(toTokens(a, MICRO)).toHaveLength(toTokens(randomArchitecture(MICRO, 2), MICRO).length);
    expect(randomArchitecture(MICRO, 1)).toEqual(a);
    expect(randomArchitecture(MICRO, 2)).not.toEqual(a);
  });
});
