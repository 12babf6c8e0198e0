/*
 * `--mode scratch` (train the architecture's own network for E epochs, validation per epoch) and
 * `--mode table` (NAS-Bench-201 lookup) as processes, standalone.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Nb201Genotype } from '../search-spaces/genotype.js';
import { DEFAULT_SPECS, toParams, type SpaceSpec } from '../search-spaces/spaces.js';
import { KJV_DIR, randomParams, requireDist, runTrial, TINY_MICRO } from './trial-helpers.js';

beforeAll(requireDist);

const NB201_HEADER = 'file id,arch str,cfg name,C,N,train accuracy,validation accuracy,test accuracy';
const CELL: Nb201Genotype = { space: 'nb201', edges: ['nor_conv_3x3', 'skip_connect', 'nor_conv_1x1', 'avg_pool_3x3', 'none', 'nor_conv_3x3'] };
const CELL_ARCH = '|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|';

describe('scratch mode', () => {
  it('micro: trains the fixed network E epochs, validation accuracy per epoch, the last one as FINAL; no store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trial-scratch-'));
    const run = await runTrial([...TINY_MICRO, '--mode', 'scratch', '--epochs', '2', '--params', JSON.stringify(randomParams(DEFAULT_SPECS.micro, 4))], dir);
    expect(run.code, run.stderr).toBe(0);
    const periodical = run.metrics.filter((m) => m.type === 'PERIODICAL');
    expect(periodical.map((m) => m.sequence)).toEqual([0, 1]);
    const final = run.metrics.find((m) => m.type === 'FINAL')!.value;
    expect(final).toMatchObject({ default: periodical[1]!.value.default, epochs: 2 });
    expect(final.default).toBeGreaterThanOrEqual(0);
    expect(final.default).toBeLessThanOrEqual(1);
    expect(run.stdout).toContain('model: micro network, C=2, 2 cells of 5 nodes');
    expect(run.stdout).toMatch(/^epoch 2\/2: lr [\d.e-]+, train loss [\d.]+, validation accuracy [\d.]+/m);
    expect(existsSync(join(dir, 'runs', 'standalone', 'store'))).toBe(false);
    expect(existsSync(join(dir, 'runs', 'standalone', 'architecture.svg'))).toBe(true);
  });

  it('rnn: FINAL is 80/perplexity with the perplexity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trial-scratch-rnn-'));
    const spec: SpaceSpec = { ...DEFAULT_SPECS.rnn, nodes: 4 };
    const args = ['--mode', 'scratch', '--epochs', '1', '--dataset', 'ptb', '--data-dir', KJV_DIR, '--subset', '600', '--hidden', '8', '--batch-size', '4', '--bptt', '5'];
    const run = await runTrial([...args, '--params', JSON.stringify(randomParams(spec, 5))], dir);
    expect(run.code, run.stderr).toBe(0);
    const final = run.metrics.find((m) => m.type === 'FINAL')!.value;
    expect(final.default).toBeCloseTo(80 / final.ppl!, 10);
    expect(run.metrics.filter((m) => m.type === 'PERIODICAL')).toHaveLength(1);
  });
});

describe('table mode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trial-table-'));
  const table = join(dir, 'nb201.csv');
  writeFileSync(table, `${NB201_HEADER}\n0,${CELL_ARCH},cfg,16,5,99.5,88.25,90.5\n`);
  const params = toParams(CELL, DEFAULT_SPECS.nb201);

  it('reports the validation accuracy as default and the test accuracy, as fractions, without training', async () => {
    const run = await runTrial(['--mode', 'table', '--table', table, '--params', JSON.stringify(params)], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.metrics).toEqual([{ type: 'FINAL', sequence: 0, parameter_id: 0, trial_job_id: 'standalone', value: { default: 0.8825, test: 0.905 } }]);
    expect(run.stdout).toContain(`NAS-Bench-201 ${CELL_ARCH}`);
    expect(run.stdout).not.toContain('backend:');
  });

  it('fails with one line for a cell that is not in the table', async () => {
    const other = toParams({ ...CELL, edges: ['none', 'none', 'none', 'none', 'none', 'none'] }, DEFAULT_SPECS.nb201);
    const run = await runTrial(['--mode', 'table', '--table', table, '--params', JSON.stringify(other)], dir);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^nni-enas trial: architecture \|none~0\|.* is not in the NAS-Bench-201 table\n$/);
    expect(run.metrics).toEqual([]);
  });
});
