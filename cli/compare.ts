/*
 * `nni-enas compare`: puts experiments of different tuners side by side (NNI's web UI shows one
 * experiment at a time). Reads our run directories, nnictl exports and NNI REST data
 * (compare/sources.ts) and writes report.md, charts and best-architecture pictures.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { specOfSearchSpace, type SpaceSpec } from '../search-spaces/spaces.js';
import { buildReport } from '../compare/report.js';
import { loadSources, type SourceRequest } from '../compare/sources.js';

interface CompareArgs {
  sources?: string[];
  out: string;
  label?: string[];
  trials: number[];
  minutes?: number[];
  'report-extra'?: string[];
  minimize: boolean;
  'space-file'?: string;
  timeout: number;
}

const asList = (value: string | string[]): string[] => [value].flat();

/** Positional sources plus `--label name=source` pairs; a labelled source need not be repeated positionally. */
export function sourceRequests(sources: readonly string[], labels: readonly string[]): SourceRequest[] {
  const requests: SourceRequest[] = sources.map((source) => ({ source }));
  for (const pair of labels) {
    const at = pair.indexOf('=');
    if (at < 1 || at === pair.length - 1) throw new Error(`--label expects name=source, got "${pair}"`);
    requests.push({ label: pair.slice(0, at), source: pair.slice(at + 1) });
  }
  if (requests.length === 0) throw new Error('name at least one source');
  return requests;
}

export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare [sources..]',
  describe: 'compare tuners across experiments: tables of best metric after k trials / t minutes, charts, best architectures',
  builder: (y) =>
    y
      .positional('sources', {
        type: 'string',
        array: true,
        describe: 'run directories (or directories of runs), nnictl export JSON files, saved NNI trial-jobs JSON files, or http://host:port of a running NNI manager',
      })
      .option('out', { type: 'string', default: 'report', describe: 'output directory for report.md and the SVGs' })
      // Repeated, not greedy arrays: a greedy --label would swallow the positional sources after it.
      .option('label', { type: 'string', coerce: asList, describe: 'name=source: group this source under a label (repeatable); default: the tuner or experiment name, else the file name' })
      .option('trials', { type: 'number', array: true, default: [10, 50, 100, 200], describe: 'trial counts k for "best after k trials" ("all" is always added)' })
      .option('minutes', { type: 'number', array: true, describe: 'times for "best after t" (default: picked from the durations of the timed runs)' })
      .option('report-extra', { type: 'string', coerce: asList, describe: 'extra metric to report for the best-by-default trial, e.g. test (repeatable)' })
      .option('minimize', { type: 'boolean', default: false, describe: 'the default metric is minimised (for sources that do not declare a direction)' })
      .option('space-file', { type: 'string', describe: 'NNI search-space file the parameters come from (default: recognised from the keys)' })
      .option('timeout', { type: 'number', default: 10, describe: 'seconds to wait for each NNI REST request' })
      .example('$0 compare runs/ tpe-export.json http://127.0.0.1:8080 --report-extra test --out report/', 'ENAS runs against a TPE export and a live NNI experiment')
      .example('$0 compare --label tpe=exp1.json --label tpe=exp2.json --label enas=runs/ --trials 10 50 100', 'two TPE experiments aggregated under one label'),
  handler: async (args) => {
    try {
      await compare(args);
    } catch (error) {
      // One line, as cli/main.ts does: yargs would answer a rejected handler with its usage text and a stack trace.
      console.error(`nni-enas: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 2;
    }
  },
};

/** --space-file as a spec; every failure one line naming the file. */
function readSpaceFile(path: string): SpaceSpec {
  try {
    return specOfSearchSpace(JSON.parse(readFileSync(path, 'utf8')));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new Error(`--space-file ${path}: ${reason}`);
  }
}

/** Loads the sources, reports their problems on stderr and writes the report; exit code 1 when nothing could be read. */
async function compare(args: CompareArgs): Promise<void> {
  const requests = sourceRequests(args.sources ?? [], args.label ?? []);
  if (!args.trials.every((k) => Number.isInteger(k) && k >= 1)) throw new Error(`--trials must be positive integers, got ${args.trials.join(' ')}`);
  if (args.minutes && !args.minutes.every((m) => m > 0)) throw new Error(`--minutes must be positive, got ${args.minutes.join(' ')}`);
  if (!(args.timeout > 0)) throw new Error(`--timeout must be positive, got ${args.timeout}`);
  const space = args['space-file'] ? readSpaceFile(args['space-file']) : undefined;
  const { runs, failures } = await loadSources(requests, { timeoutMs: args.timeout * 1000 });
  for (const failure of failures) console.error(`compare: ${failure.source}: ${failure.error}`);
  for (const run of runs) for (const note of run.notes) console.error(`compare: ${run.source}: ${note}`);
  if (runs.length === 0) {
    // With one source its failure above is the whole story; with several, say that none was left.
    if (requests.length > 1) console.error('compare: no source could be read');
    process.exitCode = 1;
    return;
  }
  const report = buildReport(runs, failures, {
    trialCounts: args.trials,
    minutes: args.minutes ?? null,
    extras: args['report-extra'] ?? [],
    defaultOptimize: args.minimize ? 'minimize' : 'maximize',
    space,
  });
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'report.md'), report.markdown);
  for (const [name, content] of Object.entries(report.files)) writeFileSync(join(args.out, name), content);
  console.error(`compare: ${runs.length} run(s) read, ${failures.length} source(s) failed; wrote ${join(args.out, 'report.md')} and ${Object.keys(report.files).length} SVG file(s)`);
}
