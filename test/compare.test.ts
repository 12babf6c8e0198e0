import { once } from 'node:events';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { runTunerBenchmark } from '../bench/tuners.js';
import { compareCommand, sourceRequests } from '../cli/compare.js';
import { readRun, RunWriter, splitFinalResult, TRIALS_FILE } from '../common/results.js';
import { ValidationError } from '../common/validate.js';
import { buildReport } from '../compare/report.js';
import { decodeNniValue, loadSources, runFromExport, runFromTrialJobs, type LoadedRun } from '../compare/sources.js';
import { afterTrials, aggregate, bestIndexSoFar, bestSoFar, logTimeGrid, summarize, trialAtTime, trialGrid } from '../compare/stats.js';
import type { Nb201Genotype } from '../search-spaces/genotype.js';
import { DEFAULT_SPECS, fromParams } from '../search-spaces/spaces.js';
import { Nb201Table } from '../trial/nb201-table.js';

const REFERENCE = fileURLToPath(new URL('../../shared/reference/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/compare/', import.meta.url));
const NB201_CSV = fileURLToPath(new URL('../../shared/data/nasbench201/nb201-cifar10valid.csv', import.meta.url));
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const exportSample = () => readJson(join(REFERENCE, 'nni-export-sample.json'));
const restSample = () => readJson(join(REFERENCE, 'nni-rest-trial-jobs-sample.json')) as Record<string, unknown>[];

const temps: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'nni-enas-compare-'));
  temps.push(dir);
  return dir;
};
afterAll(() => temps.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Writes a run directory of (seconds, metric, test) trials on NB201 parameters. */
function writeRun(dir: string, tuner: string, trials: [number, number, number][], optimize: 'maximize' | 'minimize' = 'maximize'): string {
  const writer = RunWriter.create(dir, { name: `${tuner}-run`, tuner, mode: 'table', space: 'nb201', seed: 0, optimize });
  const ops = ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3'];
  trials.forEach(([seconds, metric, test], i) => {
    const parameters = Object.fromEntries(['1_from_0', '2_from_0', '2_from_1', '3_from_0', '3_from_1', '3_from_2'].map((edge, e) => [`edge_${edge}`, ops[(i + e) % 5]!]));
    writer.append({ seconds, parameter_id: i, parameters, metric, extra: { test } });
  });
  writer.close();
  return dir;
}

describe('statistics', () => {
  it('keeps the best so far when maximising and when minimising, ties keeping the earlier trial', () => {
    expect(bestSoFar([3, 1, 4, 4, 2, 5], 'maximize')).toEqual([3, 3, 4, 4, 4, 5]);
    expect(bestSoFar([3, 1, 4, 1, 2, 0.5], 'minimize')).toEqual([3, 1, 1, 1, 1, 0.5]);
    expect(bestIndexSoFar([3, 1, 4, 4, 2], 'maximize')).toEqual([0, 0, 2, 2, 2]);
    expect(bestIndexSoFar([null, 2, null, 1], 'minimize')).toEqual([-1, 1, 1, 3]);
  });

  it('computes mean, sample std and standard error', () => {
    const s = summarize([2, 4, 4, 4, 5, 5, 7, 9])!;
    expect(s.mean).toBe(5);
    expect(s.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(s.sem).toBeCloseTo(Math.sqrt(32 / 7) / Math.sqrt(8), 12);
    expect([s.n, s.min, s.max]).toEqual([8, 2, 9]);
    const one = summarize([3])!;
    expect([one.mean, Number.isNaN(one.std), Number.isNaN(one.sem)]).toEqual([3, true, true]);
    expect(summarize([])).toBeNull();
    expect(summarize([Number.NaN, 1])!.n).toBe(1);
  });

  it('aggregates runs of unequal length over the runs that reached each point, never extending a run', () => {
    const curves = [bestSoFar([1, 3, 2, 5], 'maximize'), bestSoFar([2, 2], 'maximize'), bestSoFar([0, 4, 4], 'maximize')];
    const xs = [1, 2, 3, 4, 5];
    const points = aggregate(xs, curves.map((c) => xs.map((k) => afterTrials(c, k))));
    expect(points.map((p) => [p.x, p.n, p.mean])).toEqual([
      [1, 3, 1],
      [2, 3, 3],
      [3, 2, 3.5],
      [4, 1, 5],
    ]);
    expect(points[2]!.std).toBeCloseTo(Math.SQRT1_2, 12);
    expect(Number.isNaN(points[3]!.std)).toBe(true);
  });

  it('finds the last trial finished by a time, and nothing before the first or after the run stopped', () => {
    const seconds = [1, 2, 2, 5];
    expect([0.5, 1, 2, 3, 5, 5.1].map((t) => trialAtTime(seconds, t))).toEqual([undefined, 0, 2, 2, 3, undefined]);
    expect(trialAtTime([], 1)).toBeUndefined();
  });

  it('spaces a log time grid geometrically and ends exactly at the end', () => {
    const grid = logTimeGrid(0.01, 100, 4);
    expect(grid.map((t) => Number(t.toPrecision(6)))).toEqual([0.01, 0.1, 1, 10, 100]);
  });

  it('thins long trial grids but keeps both ends', () => {
    expect(trialGrid(3)).toEqual([1, 2, 3]);
    const grid = trialGrid(10_000, 100);
    expect(grid.length).toBe(100);
    expect([grid[0], grid.at(-1)]).toEqual([1, 10_000]);
  });
});

describe('results format', () => {
  it('writes run.json and one fsynced line per trial, and reads them back validated', () => {
    const dir = join(tempDir(), 'run');
    const writer = RunWriter.create(dir, { name: 'enas-1', tuner: 'enas', mode: 'shared', space: 'micro', seed: 1, optimize: 'maximize', meta: { lr: 0.1 } });
    writer.append({ seconds: 0.5, parameter_id: 0, parameters: { a: 1 }, metric: 0.8, extra: { test: 0.7 } });
    const second = writer.append({ parameters: { a: 2 }, metric: null });
    writer.close();
    expect(second.index).toBe(1);
    expect(second.seconds).toBeGreaterThanOrEqual(0);
    const run = readRun(dir);
    expect(run.info).toMatchObject({ format: 'nni-enas-run/1', tuner: 'enas', mode: 'shared', optimize: 'maximize', meta: { lr: 0.1 } });
    expect(run.trials.map((t) => [t.index, t.metric])).toEqual([
      [0, 0.8],
      [1, null],
    ]);
    expect(run.warnings).toEqual([]);
    expect(() => RunWriter.create(dir, { name: 'again', tuner: 'enas', mode: 'shared', space: null, seed: null, optimize: 'maximize' })).toThrow(/already holds a run/);
  });

  it('refuses bad run info and bad trials, naming the key', () => {
    const dir = join(tempDir(), 'run');
    expect(() => RunWriter.create(dir, { name: 'x', tuner: 'enas', mode: 'table', space: null, seed: 1.5, optimize: 'maximize' })).toThrow(/seed/);
    const writer = RunWriter.create(dir, { name: 'x', tuner: 'enas', mode: 'table', space: null, seed: 1, optimize: 'minimize' });
    expect(() => writer.append({ parameters: {}, metric: Number.NaN })).toThrow(ValidationError);
    expect(() => writer.append({ parameters: {}, metric: 1, extra: { nested: { a: 1 } as never } })).toThrow(/extra\.nested/);
    writer.close();
  });

  it('ignores a torn last line and says so; resume cuts it off and continues the numbering', () => {
    const fixture = readRun(join(FIXTURES, 'run-torn'));
    expect(fixture.trials).toHaveLength(2);
    expect(fixture.warnings).toEqual([`${TRIALS_FILE} line 3 is torn (the writer stopped mid-line) and was ignored`]);

    const dir = writeRun(join(tempDir(), 'run'), 'enas', [
      [1, 0.5, 0.4],
      [2, 0.6, 0.5],
    ]);
    appendFileSync(join(dir, TRIALS_FILE), '{"index":2,"seconds":3,"param');
    expect(readRun(dir).warnings).toHaveLength(1);
    const writer = RunWriter.resume(dir);
    expect(writer.count).toBe(2);
    writer.append({ seconds: 4, parameters: {}, metric: 0.9 });
    writer.close();
    const resumed = readRun(dir);
    expect(resumed.warnings).toEqual([]);
    expect(resumed.trials.map((t) => [t.index, t.metric])).toEqual([
      [0, 0.5],
      [1, 0.6],
      [2, 0.9],
    ]);
  });

  it('resume keeps a whole last record that only lacks its newline', () => {
    const dir = writeRun(join(tempDir(), 'run'), 'enas', [[1, 0.5, 0.4]]);
    appendFileSync(join(dir, TRIALS_FILE), '{"index":1,"seconds":2,"parameter_id":null,"parameters":{},"metric":0.6,"extra":{}}');
    expect(readRun(dir).trials).toHaveLength(2);
    const writer = RunWriter.resume(dir);
    expect(writer.count).toBe(2);
    writer.append({ seconds: 3, parameters: {}, metric: 0.7 });
    writer.close();
    expect(readRun(dir).trials.map((t) => [t.index, t.metric])).toEqual([
      [0, 0.5],
      [1, 0.6],
      [2, 0.7],
    ]);
  });

  it('skips a corrupt line in the middle with a warning and keeps the rest', () => {
    const dir = writeRun(join(tempDir(), 'run'), 'enas', [[1, 0.5, 0.4]]);
    appendFileSync(join(dir, TRIALS_FILE), 'garbage\n{"index":2,"seconds":3,"parameter_id":null,"parameters":{},"metric":0.7,"extra":{}}\n');
    const run = readRun(dir);
    expect(run.trials.map((t) => t.metric)).toEqual([0.5, 0.7]);
    expect(run.warnings).toEqual([expect.stringMatching(/line 2 skipped/)]);
  });

  it('splits NNI final results like the web UI: number, dict with default, scalar extras only', () => {
    expect(splitFinalResult(0.5)).toEqual({ metric: 0.5, extra: {} });
    expect(splitFinalResult({ default: 0.5, test: 0.4, note: 'x', seen: { a: 1 } })).toEqual({ metric: 0.5, extra: { test: 0.4, note: 'x' } });
    expect(splitFinalResult({ accuracy: 0.5 })).toEqual({ metric: null, extra: { accuracy: 0.5 } });
    expect(decodeNniValue(JSON.stringify(JSON.stringify({ default: 1 })))).toEqual({ default: 1 });
    expect(() => decodeNniValue('{"default": NaN}')).toThrow();
  });
});

describe('NNI sources', () => {
  it('reads the real export and the real REST sample of the same experiment: the same 40 trials and the same best', () => {
    const exported = runFromExport(exportSample(), 'export.json');
    const rest = runFromTrialJobs(restSample(), 'trial-jobs.json', 'nni-rest-file');
    expect(exported.trials).toHaveLength(40);
    expect(rest.trials).toHaveLength(40);
    const results = (run: LoadedRun) => run.trials.map((t) => `${t.metric}/${t.extra.test}`).sort();
    expect(results(rest)).toEqual(results(exported));
    const best = (run: LoadedRun) => run.trials[bestIndexSoFar(run.trials.map((t) => t.metric), 'maximize').at(-1)!]!;
    expect(best(exported).metric).toBe(best(rest).metric);
    expect(best(rest).metric).toBeCloseTo(90.664, 3);
    expect(best(rest).extra.test).toBeCloseTo(90.4267, 3);
    expect(exported.timed).toBe(false);
    expect(rest.timed).toBe(true);
    expect(rest.trials.every((t, i) => i === 0 || t.seconds! >= rest.trials[i - 1]!.seconds!)).toBe(true);
  });

  it('pairs REST metrics with the parameters of their parameter_id: the NAS-Bench-201 table confirms all 40, the export only half', () => {
    const table = Nb201Table.load(NB201_CSV);
    const matching = (run: LoadedRun) =>
      run.trials.filter((t) => Math.abs(table.lookup(fromParams(DEFAULT_SPECS.nb201, t.parameters) as Nb201Genotype).validAccuracy - t.metric) < 1e-6).length;
    const rest = runFromTrialJobs(restSample(), 'trial-jobs.json', 'nni-rest-file');
    expect(matching(rest)).toBe(40);
    expect(matching(runFromExport(exportSample(), 'export.json'))).toBe(20);
    expect(rest.notes).toContain('20 metric(s) paired with the parameters of their parameter_id, which NNI had recorded on another trial');
  });

  it('reads final values that are dicts, numbers or single-encoded; leaves out missing and NaN ones with notes', () => {
    const run = runFromTrialJobs(readJson(join(FIXTURES, 'rest-mixed.json')), 'rest-mixed.json', 'nni-rest-file');
    expect(run.trials.map((t) => [t.parameters.x, t.metric, t.extra.test ?? null])).toEqual([
      [1, 0.5, 0.45],
      [2, 0.7, null],
      [3, 0.6, 0.62],
    ]);
    expect(run.trials[0]!.extra).toEqual({ test: 0.45, note: 'dict' });
    expect(run.trials.map((t) => t.seconds)).toEqual([2.5, 3.9, 5]);
    expect(run.label).toBe('rest-mixed');
    expect(run.notes.join('\n')).toMatch(/2 trial\(s\) without a final metric left out \(1 SUCCEEDED, 1 FAILED\)/);
    expect(run.notes.join('\n')).toMatch(/trial fffff: final value .* is not JSON/);
    expect(run.notes.join('\n')).toMatch(/1 trial\(s\) without a usable default metric left out/);
  });

  it('takes missing final metrics from metric-data (FINAL records only)', () => {
    const run = runFromTrialJobs(readJson(join(FIXTURES, 'rest-mixed.json')), 'x', 'nni-rest-file', { metricData: readJson(join(FIXTURES, 'rest-mixed-metric-data.json')) });
    expect(run.trials.map((t) => t.metric)).toEqual([0.5, 0.7, 0.6, 0.55]);
    expect(run.notes.join('\n')).toMatch(/1 trial\(s\) without a final metric left out \(1 FAILED\)/);
  });

  it('reports each malformed source and still reads the others', async () => {
    const empty = tempDir();
    const { runs, failures } = await loadSources(
      ['not-json.json', 'wrong-shape.json', 'empty-list.json', 'run-bad-info', 'missing.json', 'nni-export-sample.json', 'run-torn'].map((f) => ({
        source: f === 'nni-export-sample.json' ? join(REFERENCE, f) : join(FIXTURES, f),
      })).concat([{ source: empty }]),
      { timeoutMs: 1000 },
    );
    expect(runs.map((r) => [r.kind, r.label, r.trials.length])).toEqual([
      ['nni-export', 'nni-export-sample', 40],
      ['run', 'random', 2],
    ]);
    const problem = (name: string) => failures.find((f) => f.source.endsWith(name))?.error;
    expect(problem('not-json.json')).toMatch(/^not JSON/);
    expect(problem('wrong-shape.json')).toMatch(/expected a JSON list/);
    expect(problem('empty-list.json')).toMatch(/empty list/);
    expect(problem('run-bad-info')).toMatch(/optimize.*not one of.*started/s);
    expect(problem('missing.json')).toBe('no such file or directory');
    expect(problem(empty)).toMatch(/no run directories inside/);
    expect(failures).toHaveLength(6);
  });

  it('expands a directory of run directories and labels sources', async () => {
    const root = tempDir();
    writeRun(join(root, 'a'), 'enas', [[1, 1, 1]]);
    writeRun(join(root, 'b'), 'random', [[1, 2, 2]]);
    const requests = sourceRequests([root], [`mine=${join(root, 'b')}`]);
    const { runs } = await loadSources(requests, { timeoutMs: 1000 });
    expect(runs.map((r) => r.label)).toEqual(['enas', 'mine']);
    expect(() => sourceRequests([], ['oops'])).toThrow(/name=source/);
    expect(() => sourceRequests([], [])).toThrow(/at least one source/);
  });
});

describe('a running NNI manager over REST (127.0.0.1 only)', () => {
  async function serve(handler: (path: string) => [number, unknown]): Promise<{ server: Server; url: string; paths: string[] }> {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url!);
      const [status, body] = handler(req.url!);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
  }

  it('reads trial-jobs, the experiment profile, and metric-data where finalMetricData is missing', async () => {
    const jobs = restSample();
    const withoutFinal = jobs.map((job, i) => (i === 5 ? Object.fromEntries(Object.entries(job).filter(([k]) => k !== 'finalMetricData')) : job));
    const metricData = (jobs[5]!.finalMetricData as unknown[]).concat([{ timestamp: 1, trialJobId: 'x', parameterId: '0', type: 'PERIODICAL', sequence: 0, data: '"\\"1\\""' }]);
    const profile = { id: 'dewacuo1', params: { experimentName: 'nb201-tpe', tuner: { name: 'TPE', classArgs: { optimize_mode: 'maximize' } } } };
    const { server, url, paths } = await serve((path) => {
      if (path === '/api/v1/nni/trial-jobs') return [200, withoutFinal];
      if (path === '/api/v1/nni/experiment') return [200, profile];
      if (path === '/api/v1/nni/metric-data') return [200, metricData];
      return [404, 'not found'];
    });
    try {
      const { runs, failures } = await loadSources([{ source: `${url}/` }], { timeoutMs: 5000 });
      expect(failures).toEqual([]);
      expect(runs[0]).toMatchObject({ kind: 'nni-rest', label: 'TPE', name: 'nb201-tpe', tuner: 'TPE', optimize: 'maximize', timed: true });
      expect(runs[0]!.trials).toHaveLength(40);
      expect(paths.sort()).toEqual(['/api/v1/nni/experiment', '/api/v1/nni/metric-data', '/api/v1/nni/trial-jobs']);
    } finally {
      server.close();
    }
  });

  it('reports a refused connection and an HTTP error per source, and the profile as optional', async () => {
    const broken = await serve((path) => (path.endsWith('/trial-jobs') ? [500, { error: 'database locked' }] : [404, {}]));
    const partial = await serve((path) => (path.endsWith('/trial-jobs') ? [200, restSample()] : [503, {}]));
    // Opened and closed last, so that no other server of this test can take its port.
    const closed = await serve(() => [200, []]);
    closed.server.close();
    await once(closed.server, 'close');
    try {
      const { runs, failures } = await loadSources([{ source: closed.url }, { source: broken.url }, { source: partial.url }], { timeoutMs: 5000 });
      expect(failures.map((f) => f.error)).toEqual([
        `GET ${closed.url}/api/v1/nni/trial-jobs: ECONNREFUSED`,
        expect.stringMatching(/trial-jobs: HTTP 500 .*database locked/),
      ]);
      expect(runs).toHaveLength(1);
      expect(runs[0]!.label).toBe(new URL(partial.url).host);
      expect(runs[0]!.notes[0]).toMatch(/experiment profile unavailable .*HTTP 503/);
    } finally {
      broken.server.close();
      partial.server.close();
    }
  });
});

describe('the report', () => {
  it('handles minimisation throughout: best is the lowest, sources without a direction follow --minimize', async () => {
    const dir = writeRun(join(tempDir(), 'ppl'), 'enas', [
      [1, 120, 118],
      [2, 90, 95],
      [3, 100, 99],
    ], 'minimize');
    const { runs } = await loadSources([{ source: dir }, { source: join(FIXTURES, 'rest-mixed.json') }], { timeoutMs: 1000 });
    const maximised = buildReport(runs, [], { trialCounts: [1, 2], minutes: null, extras: ['test'], defaultOptimize: 'maximize' });
    expect(maximised.markdown).toContain('## Minimised default metric (lower is better)');
    expect(maximised.markdown).toContain('## Maximised default metric (higher is better)');
    expect(maximised.markdown).toContain('| enas | 1 | 120.0 | 90.0 | 90.0 |');
    expect(maximised.markdown).toContain('| rest-mixed | 1 | 0.5000 | 0.7000 | 0.7000 |');
    expect(Object.keys(maximised.files).sort()).toEqual(['best-enas-minimize.svg', 'best-vs-time-maximize.svg', 'best-vs-time-minimize.svg', 'best-vs-trials-maximize.svg', 'best-vs-trials-minimize.svg']);

    const minimised = buildReport(runs, [], { trialCounts: [1, 2], minutes: null, extras: ['test'], defaultOptimize: 'minimize' });
    expect(minimised.markdown).not.toContain('## Maximised');
    expect(minimised.markdown).toContain('| rest-mixed | 1 | 0.5000 | 0.5000 | 0.5000 |');
    expect(minimised.markdown).toMatch(/\| enas \| .*ppl: trial 1, parameter_id 1 \| 90\.00 \| 95\.00 \|/);
    expect(minimised.markdown).toMatch(/\| rest-mixed \| .* \| minimize \(assumed\) \|/);
  });
});

describe('nni-enas compare, end to end', () => {
  async function compare(args: string[]): Promise<void> {
    await yargs(args).command(compareCommand).strict().fail(false).parseAsync();
  }

  it('writes report.md with the expected rows, the charts with one line per label, and best-architecture pictures', async () => {
    const root = tempDir();
    const runs = join(root, 'runs');
    writeRun(join(runs, 'enas-0'), 'enas', [[10, 80, 79], [20, 85, 84], [30, 90, 91], [40, 88, 87]]);
    writeRun(join(runs, 'enas-1'), 'enas', [[15, 82, 81], [25, 86, 85], [35, 84, 83]]);
    writeRun(join(runs, 'random-0'), 'random', [[5, 70, 71], [30, 75, 76], [60, 88, 89], [90, 89, 88]]);
    writeRun(join(runs, 'random-1'), 'random', [[5, 81, 80], [10, 79, 78], [20, 83, 84], [70, 84, 86]]);
    const out = join(root, 'report');
    const stderr: string[] = [];
    const original = console.error;
    console.error = (line: string) => stderr.push(line);
    try {
      await compare(['compare', runs, join(REFERENCE, 'nni-export-sample.json'), join(FIXTURES, 'not-json.json'), '--label', `tpe=${join(REFERENCE, 'nni-export-sample.json')}`, '--trials', '2', '3', '4', '--minutes', '0.5', '1', '--report-extra', 'test', '--out', out]);
    } finally {
      console.error = original;
    }
    expect(process.exitCode ?? 0).toBe(0);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    // Best after k trials: enas runs [80,85,90,90] and [82,86,86]; random [70,75,88,89] and [81,81,83,84].
    expect(md).toContain('| label | runs | 2 | 3 | 4 | all |');
    expect(md).toContain('| enas | 2 | 85.50 ± 0.71 | 88.00 ± 2.83 | 90.00 (1/2) | 88.00 ± 2.83 |');
    expect(md).toContain('| random | 2 | 78.00 ± 4.24 | 85.50 ± 3.54 | 86.50 ± 3.54 | 86.50 ± 3.54 |');
    expect(md).toMatch(/\| tpe \| 1 \| 89\.37 \| 89\.37 \| 89\.37 \| 90\.66 \|/);
    // After 30 s: enas bests 90 and 86; random 75 and 83; the export has no times.
    expect(md).toContain('| label | runs | 30 s | 1 min |');
    expect(md).toContain('| enas | 2 | 88.00 ± 2.83 | – |');
    expect(md).toContain('| random | 2 | 79.00 ± 5.66 | 85.50 ± 3.54 |');
    expect(md).toContain('| tpe | 0 | n/a | n/a |');
    // Test accuracy of the best-by-default trial.
    expect(md).toContain('| enas | 2 | 84.50 ± 0.71 | 88.00 ± 4.24 | 91.00 (1/2) | 88.00 ± 4.24 |');
    expect(md).toMatch(/\| .*not-json\.json \| not JSON/);
    expect(stderr.join('\n')).toMatch(/not-json\.json: not JSON/);

    const polylines = (file: string) => (readFileSync(join(out, file), 'utf8').match(/<polyline/g) ?? []).length;
    expect(polylines('best-vs-trials.svg')).toBe(3);
    expect(polylines('best-vs-time.svg')).toBe(2);
    for (const label of ['enas', 'random', 'tpe']) expect(existsSync(join(out, `best-${label}.svg`))).toBe(true);
    expect(md).toContain('![best architecture of enas](best-enas.svg)');
  });

  it('exits non-zero when no source can be read', async () => {
    const out = join(tempDir(), 'report');
    const original = console.error;
    console.error = () => {};
    try {
      await compare(['compare', join(FIXTURES, 'empty-list.json'), join(FIXTURES, 'not-json.json'), '--out', out]);
    } finally {
      console.error = original;
    }
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    expect(existsSync(join(out, 'report.md'))).toBe(false);
  });
});

describe('nni-enas bench tuners', () => {
  it('writes one run directory per (strategy, seed) with validation accuracy as metric and test accuracy as extra', async () => {
    const out = tempDir();
    const lines: string[] = [];
    const dirs = await runTunerBenchmark({ tablePath: NB201_CSV, strategies: ['enas', 'random'], seeds: 2, budget: 12, out, controller: {}, log: (line) => lines.push(line) });
    expect(dirs.map((d) => d.slice(out.length + 1))).toEqual(['enas-seed0', 'enas-seed1', 'random-seed0', 'random-seed1']);
    expect(lines).toHaveLength(4);
    const table = Nb201Table.load(NB201_CSV);
    for (const dir of dirs) {
      const run = readRun(dir);
      expect(run.warnings).toEqual([]);
      expect(run.info).toMatchObject({ mode: 'table', space: 'nb201', optimize: 'maximize' });
      expect(run.trials).toHaveLength(12);
      for (const trial of run.trials) {
        const entry = table.lookup(fromParams(DEFAULT_SPECS.nb201, trial.parameters) as Nb201Genotype);
        expect([trial.metric, trial.extra.test]).toEqual([entry.validAccuracy, entry.testAccuracy]);
        expect(trial.seconds).toBeGreaterThanOrEqual(0);
      }
    }
    expect(readRun(dirs[0]!).info.tuner).toBe('enas');
    await expect(runTunerBenchmark({ tablePath: NB201_CSV, strategies: ['enas'], seeds: 1, budget: 1, out, controller: {}, log: () => {} })).rejects.toThrow(/already holds a run/);
  });
});
