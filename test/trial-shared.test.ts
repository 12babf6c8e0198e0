/*
 * `--mode shared` as a process, standalone (no NNI: --params, metrics printed): the first trial
 * initialises the store, every trial scores before it trains, commits once and advances the global
 * step by its S steps; architecture.json/.svg and the summary are written. Micro, macro and rnn.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MACRO_OPS } from '../search-spaces/genotype.js';
import { DEFAULT_SPECS, fromParams, toTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import { GLOBAL_STEP, nonFiniteTensor } from '../trial/shared-store.js';
import { loadStore } from '../trial/store.js';
import { fashionTinyDir } from './fashion-tiny.js';
import { KJV_DIR, randomParams, requireDist, runTrial, TINY_MICRO, type TrialRun } from './trial-helpers.js';

beforeAll(requireDist);

const final = (run: TrialRun) => run.metrics.find((m) => m.type === 'FINAL')!;
const periodical = (run: TrialRun) => run.metrics.filter((m) => m.type === 'PERIODICAL');

function expectSucceeded(run: TrialRun): void {
  expect(run.code, run.stderr).toBe(0);
  expect(run.stderr).toBe('');
}

describe('non-finite weights', () => {
  it('finds NaN and ±Infinity in float32 tensors by their bits, and nothing in finite or int32 ones', () => {
    const tensor = (data: Float32Array | Int32Array) => ({ shape: [data.length], data });
    const finite = Float32Array.of(0, -0, 3.4028234663852886e38, -3.4028234663852886e38, 1.4e-45, 1);
    expect(nonFiniteTensor(new Map([['a', tensor(finite)], ['step', tensor(Int32Array.of(0x7f800000, -1))]]))).toBeUndefined();
    for (const bad of [NaN, Infinity, -Infinity]) {
      const data = Float32Array.of(1, 2, bad);
      expect(nonFiniteTensor(new Map([['a', tensor(finite)], ['b', tensor(data.subarray(1))]]))).toBe('b');
    }
  });
});

describe('shared mode', () => {
  it('micro: initialises the store, then each trial scores, trains S steps and commits once; writes the architecture files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trial-shared-'));
    const spec = DEFAULT_SPECS.micro;
    const params = randomParams(spec, 1);
    const args = [...TINY_MICRO, '--train-steps', '4', '--valid-batches', '1', '--output', 'out'];

    const first = await runTrial([...args, '--params', JSON.stringify(params)], dir);
    expectSucceeded(first);
    expect(periodical(first).map((m) => m.sequence)).toEqual([0, 1, 2, 3]);
    for (const m of periodical(first)) expect(Object.keys(m.value).sort()).toEqual(['default', 'loss']);
    const result = final(first).value;
    expect(result).toMatchObject({ global_step: 4, store_version: 2, lr: 0.05 });
    expect(result.default).toBeGreaterThanOrEqual(0);
    expect(result.default).toBeLessThanOrEqual(1);
    expect(first.stdout).toContain(`reward ${result.default!.toFixed(4)}: accuracy on 1 validation batches`);
    expect(first.stdout).toMatch(/^backend: @tensorflow\/tfjs-backend-/m);
    expect(first.stdout).toMatch(/^ {2}normal cell: 2 = \w+\(\d\) \+ \w+\(\d\) \|/m);
    expect(first.stdout).toMatch(/^timings: start-up [\d.]+ s, .* \(total [\d.]+ s\); outside scoring and training/m);

    const architecture = JSON.parse(readFileSync(join(dir, 'out', 'architecture.json'), 'utf8'));
    const genotype = fromParams(spec, params);
    expect(architecture).toEqual({
      trial_job_id: 'standalone',
      parameter_id: 0,
      parameter_source: 'standalone',
      mode: 'shared',
      spec: JSON.parse(JSON.stringify(spec)),
      parameters: params,
      tokens: toTokens(genotype, spec),
      genotype: JSON.parse(JSON.stringify(genotype)),
    });
    expect(readFileSync(join(dir, 'out', 'architecture.svg'), 'utf8')).toMatch(/^<svg [^]*normal cell[^]*<\/svg>\n$/);

    // The default store is runs/standalone/store under the working directory; a second trial
    // continues it, here re-running the first one's architecture from its architecture.json.
    const second = await runTrial([...args, '--params-file', join(dir, 'out', 'architecture.json')], dir);
    expectSucceeded(second);
    expect(final(second).value).toMatchObject({ global_step: 8, store_version: 3 });
    const store = loadStore(join(dir, 'runs', 'standalone', 'store'));
    expect(store.version).toBe(3);
    expect(store.tensors.get(GLOBAL_STEP)!.data[0]).toBe(8);
    expect(store.meta.model).toMatchObject({ model: 'micro supernet', channels: 2, layers: 0, dataset: 'fashion-mnist' });
  });

  it('macro: a 3-layer space from the parameter keys alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trial-shared-macro-'));
    const spec: SpaceSpec = { space: 'macro', layers: 3, ops: MACRO_OPS };
    const args = ['--data-dir', fashionTinyDir(), '--subset', '2', '--channels', '2', '--batch-size', '8', '--eval-batch-size', '10', '--train-steps', '2', '--valid-batches', '2'];
    const run = await runTrial([...args, '--params', JSON.stringify(randomParams(spec, 2))], dir);
    expectSucceeded(run);
    expect(final(run).value).toMatchObject({ global_step: 2, store_version: 2 });
    expect(run.stdout).toMatch(/^ {2}layer 2: \w+\(layer 1\)/m);
    expect(run.stdout).toContain('model: macro supernet, C=2, 3 layers');
  });

  it('rnn on PTB-format text: the reward is 80/perplexity, reported with the perplexity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trial-shared-rnn-'));
    const spec: SpaceSpec = { ...DEFAULT_SPECS.rnn, nodes: 3 };
    const args = ['--dataset', 'ptb', '--data-dir', KJV_DIR, '--subset', '2000', '--hidden', '8', '--batch-size', '4', '--bptt', '5'];
    const run = await runTrial([...args, '--train-steps', '3', '--valid-batches', '2', '--params', JSON.stringify(randomParams(spec, 3))], dir);
    expectSucceeded(run);
    const value = final(run).value;
    expect(value.default).toBeCloseTo(80 / value.ppl!, 10);
    expect(value.ppl).toBeGreaterThan(1);
    expect(value).toMatchObject({ global_step: 3, store_version: 2, lr: 20 });
    expect(periodical(run)).toHaveLength(3);
    expect(run.stdout).toMatch(/^ {2}h\[t\] = mean of nodes [\d, ]+$/m);
  });
});
