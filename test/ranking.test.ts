/*
 * The ranking benchmark (bench/ranking.ts, bench/rank-stats.ts): the rank statistics against
 * hand-computed values, ties included; the architecture sample depends on the space and seed
 * only; end to end through the compiled command line (needs dist/) on tiny micro and rnn
 * searches, where a second run of another search reuses every cached stand-alone result without
 * touching it; bad input is refused with one line and nothing written.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MICRO_OPS, RNN_ACTIVATIONS } from '../search-spaces/genotype.js';
import { toTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { randomArchitecture } from '../embedded/retrain.js';
import { runSearch } from '../embedded/search.js';
import { resolveSearchSettings, type SearchSettings } from '../embedded/settings.js';
import { averageRanks, kendallNullSd, kendallTauB, spearmanRho, topIndices, topOverlap } from '../bench/rank-stats.js';
import { RANKING_JSON, RANKING_SVG, sampleArchitectures, type RankingResult } from '../bench/ranking.js';
import { freshDir, KJV_PTB, quietIo, REPO, writeConfig } from './embedded-fixtures.js';
import { fashionTinyDir } from './fashion-tiny.js';

const CLI = join(REPO, 'dist/cli/main.js');
const MICRO: SpaceSpec = { space: 'micro', nodes: 2, ops: MICRO_OPS };
const RNN: SpaceSpec = { space: 'rnn', nodes: 4, ops: RNN_ACTIVATIONS };

const ranking = (args: string[]) => spawnSync(process.execPath, [CLI, 'bench', 'ranking', ...args], { encoding: 'utf8' });
const readResult = (out: string) => JSON.parse(readFileSync(join(out, RANKING_JSON), 'utf8')) as RankingResult;

/** A finished tiny search of `spec` (1 epoch); its run directory. */
async function tinySearch(spec: SpaceSpec, trialFlags: string, seed: number): Promise<string> {
  const config = writeConfig(spec, trialFlags, { seed });
  const settings: SearchSettings = resolveSearchSettings(config, { preset: 'tiny', epochs: 1, seed, trial: {} }).settings;
  const dir = freshDir('ranking-search');
  await runSearch(dir, settings, false, quietIo());
  return dir;
}

describe('rank statistics', () => {
  it('average ranks share the ranks that tied values span', () => {
    expect(averageRanks([10, 20, 20, 30])).toEqual([1, 2.5, 2.5, 4]);
    expect(averageRanks([3, 1, 3, 3])).toEqual([3, 1, 3, 3]);
  });

  it('Kendall τ-b and Spearman ρ without ties', () => {
    expect(kendallTauB([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])).toBe(1);
    expect(spearmanRho([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])).toBeCloseTo(1, 12);
    expect(kendallTauB([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])).toBe(-1);
    expect(spearmanRho([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // 7 concordant, 3 discordant pairs: τ = 4/10; rank differences −2, 1, 1, −1, 1: ρ = 1 − 6·8/(5·24) = 0.6.
    expect(kendallTauB([1, 2, 3, 4, 5], [3, 1, 2, 5, 4])).toBeCloseTo(0.4, 12);
    expect(spearmanRho([1, 2, 3, 4, 5], [3, 1, 2, 5, 4])).toBeCloseTo(0.6, 12);
  });

  it('Kendall τ-b and Spearman ρ with ties', () => {
    // Pairs: 3 concordant, 1 discordant, one tied in x only, one tied in y only:
    // τ-b = (3 − 1) / √((6 − 1)(6 − 1)) = 0.4. Average ranks x 1, 2.5, 2.5, 4 and y 1, 4, 2.5, 2.5:
    // deviations (−1.5, 0, 0, 1.5) and (−1.5, 1.5, 0, 0), ρ = 2.25 / 4.5 = 0.5.
    expect(kendallTauB([1, 2, 2, 3], [1, 3, 2, 2])).toBeCloseTo(0.4, 12);
    expect(spearmanRho([1, 2, 2, 3], [1, 3, 2, 2])).toBeCloseTo(0.5, 12);
    // A pair tied in both counts in both tie corrections: τ-b = 2 / √((3 − 1)(3 − 1)) = 1.
    expect(kendallTauB([1, 1, 2], [5, 5, 6])).toBeCloseTo(1, 12);
    expect(spearmanRho([1, 1, 2], [5, 5, 6])).toBeCloseTo(1, 12);
    // A constant ranking agrees with nothing: undefined, not 0.
    expect(kendallTauB([0.1, 0.1, 0.1], [1, 2, 3])).toBeNull();
    expect(spearmanRho([1, 2, 3], [7, 7, 7])).toBeNull();
  });

  it('top-k overlap, its chance level, and τ under unrelated rankings', () => {
    expect(topOverlap([0.9, 0.8, 0.7, 0.1, 0.2, 0.3], [0.1, 0.8, 0.9, 0.7, 0.2, 0.3], 3)).toEqual({ k: 3, overlap: 2, chance: 1.5 });
    // Ties at the boundary go to the earlier item.
    expect(topIndices([1, 1, 1, 0], 2)).toEqual([0, 1]);
    expect(kendallNullSd(20)).toBeCloseTo(Math.sqrt(90 / 3420), 12);
  });
});

describe('the architecture sample', () => {
  it('is N distinct uniform draws fixed by the space and the seed alone', () => {
    const spec = { ...MICRO, nodes: 5 } as SearchSettings['spec'];
    const sample = sampleArchitectures(spec, 20, 0);
    expect(new Set(sample.map((a) => a.tokens.join(','))).size).toBe(20);
    for (const { archSeed, tokens } of sample) expect(tokens).toEqual(toTokens(randomArchitecture(spec, archSeed), spec));
    expect(sampleArchitectures(spec, 20, 0)).toEqual(sample);
    // The first architectures of a larger sample are the smaller sample.
    expect(sampleArchitectures(spec, 25, 0).slice(0, 20)).toEqual(sample);
    expect(sampleArchitectures(spec, 20, 1).map((a) => a.tokens)).not.toEqual(sample.map((a) => a.tokens));
  });
});

describe('bench ranking on tiny searches', () => {
  let runA: string;
  let runB: string;
  let cache: string;
  let first: ReturnType<typeof ranking>;

  beforeAll(async () => {
    await setupBackend('wasm');
    runA = await tinySearch(MICRO, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`, 3);
    runB = await tinySearch(MICRO, `--dataset fashion-mnist --data-dir ${fashionTinyDir()}`, 4);
    cache = join(freshDir('ranking-cache'), 'cache');
    first = ranking(['--run', runA, '--archs', '4', '--cache', cache]);
  }, 300_000);

  it('scores N random architectures both ways and writes ranking.json and ranking.svg', () => {
    expect(first.status, first.stderr).toBe(0);
    const out = join(runA, 'ranking');
    const result = readResult(out);
    expect(result.architectures).toHaveLength(4);
    expect(result.architectures.map((a) => a.tokens)).toEqual(sampleArchitectures(result.spec, 4, 0).map((a) => a.tokens));
    for (const a of result.architectures) {
      expect(a.shared.accuracy).toBeGreaterThanOrEqual(0);
      expect(a.shared.accuracy).toBeLessThanOrEqual(1);
      expect(a.standAlone.cached).toBe(false);
      expect(a.standAlone.test?.accuracy ?? 0).toBe(a.standAlone.reward);
      expect(Object.keys(a.parameters).length).toBe(a.tokens.length);
    }
    // The statistics are those of the scores listed, shared rewards against stand-alone rewards.
    const shared = result.architectures.map((a) => a.shared.reward);
    const alone = result.architectures.map((a) => a.standAlone.reward);
    expect(result.statistics.kendallTauB).toBe(kendallTauB(shared, alone));
    expect(result.statistics.spearmanRho).toBe(spearmanRho(shared, alone));
    expect(result.statistics.top).toEqual(topOverlap(shared, alone, 2));
    expect(result.standAlone.recipe).toMatchObject({ epochs: 2, subset: 4, channels: 4, cells: 1 });
    expect(result.search.lastEpoch?.epoch).toBe(1);
    expect(readdirSync(cache)).toHaveLength(4);
    const svg = readFileSync(join(out, RANKING_SVG), 'utf8');
    expect(svg.match(/<circle /g)?.length).toBe(result.architectures.filter((a) => a.standAlone.test !== null).length);
    expect(first.stdout).toMatch(/^Kendall τ-b (-?[\d.]+|undefined) /m);
  });

  it('reuses the cached stand-alone results for another run of the same space, without retraining', () => {
    const files = readdirSync(cache).map((name) => join(cache, name));
    const before = files.map((path) => ({ path, mtime: statSync(path).mtimeMs, text: readFileSync(path, 'utf8') }));
    const out = freshDir('ranking-out');
    const second = ranking(['--run', runB, '--archs', '4', '--cache', cache, '--out', out]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/stand-alone: 4 cached, 0 to train/);
    const [a, b] = [readResult(join(runA, 'ranking')), readResult(out)];
    expect(b.architectures.map((x) => x.tokens)).toEqual(a.architectures.map((x) => x.tokens));
    expect(b.architectures.every((x) => x.standAlone.cached)).toBe(true);
    const aloneOf = (r: RankingResult) => r.architectures.map(({ standAlone: { cached: _cached, ...rest } }) => rest);
    expect(aloneOf(b)).toEqual(aloneOf(a));
    expect(readdirSync(cache).map((name) => join(cache, name))).toEqual(files);
    for (const { path, mtime, text } of before) {
      expect(statSync(path).mtimeMs).toBe(mtime);
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
  });

  describe('refuses bad input with one line, exit status 2, and writes nothing', () => {
    const cases: [string, (run: string) => string[], RegExp][] = [
      ['--archs 1', (run) => ['--run', run, '--archs', '1'], /--archs must be an integer >= 3/],
      ['--archs 2.5', (run) => ['--run', run, '--archs', '2.5'], /--archs must be an integer >= 3/],
      ['--archs abc', (run) => ['--run', run, '--archs', 'abc'], /--archs/],
      ['--seed -1', (run) => ['--run', run, '--seed', '-1'], /--seed must be an integer/],
      ['an unknown flag', (run) => ['--run', run, '--epochs', '3'], /Unknown argument: epochs/],
      ['a missing run directory', (run) => ['--run', join(run, 'nowhere')], /--run .*nowhere: no such directory/],
      ['a directory without settings.json', (run) => ['--run', join(run, 'checkpoint')], /checkpoint: no embedded search here \(settings\.json missing\)/],
      ['--backend gpu', (run) => ['--run', run, '--backend', 'gpu'], /backend/],
    ];
    for (const [what, args, message] of cases)
      it(what, () => {
        const dir = freshDir('ranking-bad');
        const [cacheDir, out] = [join(dir, 'cache'), join(dir, 'out')];
        const refused = ranking([...args(runA), '--cache', cacheDir, '--out', out]);
        expect(refused.status).toBe(2);
        expect(refused.stderr.trim().split('\n')).toHaveLength(1);
        expect(refused.stderr).toMatch(message);
        expect(existsSync(cacheDir) || existsSync(out)).toBe(false);
      });

    it('a run directory without a checkpoint', () => {
      const run = freshDir('ranking-no-checkpoint');
      copyFileSync(join(runA, 'settings.json'), join(run, 'settings.json'));
      const refused = ranking(['--run', run, '--cache', join(run, 'cache')]);
      expect(refused.status).toBe(2);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toMatch(/checkpoint: no checkpoint/);
      expect(readdirSync(run)).toEqual(['settings.json']);
    });

    it('a --cache that is a file', () => {
      const dir = freshDir('ranking-cache-file');
      writeFileSync(join(dir, 'cache'), '');
      const refused = ranking(['--run', runA, '--cache', join(dir, 'cache'), '--out', join(dir, 'out')]);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(/--cache .*cache: not a directory/);
      expect(readdirSync(dir)).toEqual(['cache']);
    });
  });
});

describe('bench ranking on a tiny rnn search', () => {
  it('ranks by perplexity, lower is better, on both sides', async () => {
    const run = await tinySearch(RNN, `--dataset ptb --data-dir ${KJV_PTB}`, 3);
    const cacheDir = join(run, 'cache');
    mkdirSync(cacheDir);
    const done = ranking(['--run', run, '--archs', '3', '--cache', cacheDir]);
    expect(done.status, done.stderr).toBe(0);
    const result = readResult(join(run, 'ranking'));
    for (const { shared, standAlone } of result.architectures) {
      expect(shared.reward).toBeCloseTo(80 / shared.perplexity!, 9);
      // A diverged stand-alone training ranks last, with reward 0.
      expect(standAlone.reward).toBe(standAlone.test === null ? 0 : 80 / standAlone.test.perplexity!);
    }
    expect(result.statistics.kendallTauB).toBe(
      kendallTauB(
        result.architectures.map((a) => a.shared.reward),
        result.architectures.map((a) => a.standAlone.reward),
      ),
    );
    expect(done.stdout).toMatch(/shared ppl .* alone ppl/);
  }, 300_000);
});
