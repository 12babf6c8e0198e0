/*
 * The comparison report: markdown tables of the best default metric after k trials and after
 * t of wall time (mean ± std over the runs of each label), the chosen extra metrics of the best
 * trial, SVG charts of the best-so-far curves, and a picture of each label's best architecture.
 * Pure: returns file contents; cli/compare.ts writes them.
 */
import { lineChart, type ChartSeries } from '../common/chart.js';
import type { Optimize } from '../common/results.js';
import { drawGenotype } from '../search-spaces/draw.js';
import { nb201ArchString } from '../search-spaces/genotype.js';
import { fromParams, specOfParams, type SpaceSpec } from '../search-spaces/spaces.js';
import type { LoadedRun, ScoredTrial, SourceFailure } from './sources.js';
import { aggregate, afterTrials, bestIndexSoFar, logTimeGrid, summarize, timeGrid, trialAtTime, trialGrid, type Summary } from './stats.js';

export interface ReportOptions {
  /** Trial counts k for "best after k trials"; an "all" column is always added. */
  trialCounts: number[];
  /** Times for "best after t", in minutes; null picks a few from the durations of the timed runs. */
  minutes: number[] | null;
  /** Extra metrics to report for the best-by-default trial, e.g. ["test"]. */
  extras: string[];
  /** Direction of sources that do not declare one. */
  defaultOptimize: Optimize;
  /** Space the parameters come from (--space-file); otherwise recognised from the parameter keys. */
  space?: SpaceSpec;
}

export interface Report {
  markdown: string;
  /** File name → content, to write beside report.md. */
  files: Record<string, string>;
}

/** One run prepared for statistics: trials in finishing order and, when timed, in time order. */
interface PreparedRun {
  run: LoadedRun;
  /** Index of the best trial among the first k+1, per k. */
  bestIndex: number[];
  /** Trials sorted by time with their best-so-far index, when the run is timed. */
  timed?: { seconds: number[]; trials: ScoredTrial[]; bestIndex: number[] };
}

interface LabelGroup {
  label: string;
  optimize: Optimize;
  runs: PreparedRun[];
}

const escapeCell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Decimals that give about four significant digits for the largest magnitude present. */
function decimalsFor(values: readonly number[]): number {
  const largest = Math.max(...values.filter(Number.isFinite).map(Math.abs), 0);
  return largest === 0 ? 3 : Math.min(6, Math.max(0, 3 - Math.floor(Math.log10(largest))));
}

/** "mean ± std", with "(n/N)" when only n of the label's N runs have a value there. */
function formatCell(summary: Summary | null, total: number, decimals: number): string {
  if (!summary) return '–';
  const spread = summary.n > 1 ? ` ± ${summary.std.toFixed(decimals)}` : '';
  const partial = summary.n < total ? ` (${summary.n}/${total})` : '';
  return `${summary.mean.toFixed(decimals)}${spread}${partial}`;
}

/** Human-readable duration for column heads and axis labels. */
function formatDuration(seconds: number): string {
  const round = (x: number) => String(Number(x.toPrecision(3)));
  if (seconds < 60) return `${round(seconds)} s`;
  if (seconds < 3600) return `${round(seconds / 60)} min`;
  return `${round(seconds / 3600)} h`;
}

/** The largest "nice" number (1, 2, 2.5, 5 × 10^m) not above x. */
function niceFloor(x: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(x));
  return [5, 2.5, 2, 1].map((m) => m * magnitude).find((v) => v <= x * (1 + 1e-9))!;
}

/**
 * Default time columns from the durations of the timed runs: round values at 1/8, 1/4, 1/2 and
 * all of the longest; when the longest run is more than twice the shortest (e.g. a table
 * benchmark beside a real NNI experiment), six log-spaced values from a quarter of the shortest.
 */
function autoTimes(durations: readonly number[]): number[] {
  const positive = durations.filter((d) => d > 0);
  if (positive.length === 0) return [];
  const longest = Math.max(...positive);
  const low = Math.min(...positive) / 4;
  const fractions = longest / low <= 8 ? [1 / 8, 1 / 4, 1 / 2, 1] : Array.from({ length: 6 }, (_, i) => (low / longest) ** (1 - i / 5));
  return [...new Set(fractions.map((f) => niceFloor(longest * f)))];
}

function prepare(run: LoadedRun, optimize: Optimize): PreparedRun {
  const metrics = run.trials.map((t) => t.metric);
  const prepared: PreparedRun = { run, bestIndex: bestIndexSoFar(metrics, optimize) };
  if (run.timed) {
    const trials = [...run.trials].sort((a, b) => a.seconds! - b.seconds!);
    prepared.timed = { seconds: trials.map((t) => t.seconds!), trials, bestIndex: bestIndexSoFar(trials.map((t) => t.metric), optimize) };
  }
  return prepared;
}

/** What a table or chart reads off the best trial: the default metric, or one extra metric. */
type Reading = (trial: ScoredTrial) => number | undefined;

const readMetric: Reading = (trial) => trial.metric;
const readExtra =
  (key: string): Reading =>
  (trial) => {
    const value = trial.extra[key];
    return typeof value === 'number' ? value : undefined;
  };

/** Value of `read` on the run's best trial after `count` trials (undefined: the run stopped earlier). */
function afterCount(run: PreparedRun, count: number, read: Reading): number | undefined {
  const best = afterTrials(run.bestIndex, count);
  return best === undefined ? undefined : read(run.run.trials[best]!);
}

/** Value of `read` on the run's best trial by time t (undefined: nothing finished yet, or the run had stopped). */
function atTime(run: PreparedRun, seconds: number, read: Reading): number | undefined {
  if (!run.timed) return undefined;
  const position = trialAtTime(run.timed.seconds, seconds);
  return position === undefined ? undefined : read(run.timed.trials[run.timed.bestIndex[position]!]!);
}

/** Groups runs by direction, then by label, each in order of first appearance. */
function groupRuns(runs: readonly LoadedRun[], defaultOptimize: Optimize): Map<Optimize, LabelGroup[]> {
  const groups = new Map<Optimize, LabelGroup[]>();
  for (const run of runs) {
    const optimize = run.optimize ?? defaultOptimize;
    const list = groups.get(optimize) ?? [];
    groups.set(optimize, list);
    let group = list.find((g) => g.label === run.label);
    if (!group) list.push((group = { label: run.label, optimize, runs: [] }));
    group.runs.push(prepare(run, optimize));
  }
  return groups;
}

/** A markdown table; the first `textColumns` columns are left-aligned, the rest (numbers) right-aligned. */
function table(head: string[], rows: string[][], textColumns = 1): string[] {
  return [
    `| ${head.map(escapeCell).join(' | ')} |`,
    `|${head.map((_, i) => (i < textColumns ? ' :-- ' : ' --: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(escapeCell).join(' | ')} |`),
  ];
}

/** One table: a row per label, a column per point (trial count or time). */
function pointTable(groups: LabelGroup[], points: { head: string; value: (run: PreparedRun) => number | undefined }[], runsOf: (g: LabelGroup) => PreparedRun[]): string[] {
  const rows = groups.map((g) => {
    const runs = runsOf(g);
    const summaries = points.map((p) => summarize(runs.map(p.value).filter((v): v is number => v !== undefined)));
    // Per row: labels of one table normally share a scale, but nothing forces them to.
    const decimals = decimalsFor(summaries.flatMap((s) => (s ? [s.mean] : [])));
    return [g.label, String(runs.length), ...summaries.map((s) => (runs.length ? formatCell(s, runs.length, decimals) : 'n/a'))];
  });
  return table(['label', 'runs', ...points.map((p) => p.head)], rows);
}

/**
 * Mean line and ± std band of one label from samples on a grid, drawn as steps (best-so-far only
 * changes at a point). Drawn only where at least half of the label's runs have a value: where
 * runs start or stop at different points the mean of a few runs is mostly noise.
 */
function seriesOf(label: string, xs: number[], samples: (number | undefined)[][], scaleX = 1): ChartSeries {
  const points = aggregate(xs, samples).filter((p) => p.n >= samples.length / 2);
  const steps = <T extends { x: number }>(items: T[]): T[] => items.flatMap((item, i) => (i === 0 ? [item] : [{ ...items[i - 1]!, x: item.x }, item]));
  return {
    name: label,
    points: steps(points.map((p) => ({ x: p.x / scaleX, y: p.mean }))),
    band: steps(points.filter((p) => p.n > 1).map((p) => ({ x: p.x / scaleX, low: p.mean - p.std, high: p.mean + p.std }))),
  };
}

/** Picture of the best parameters, when they parse in one of our spaces. */
function drawBest(trial: ScoredTrial, space: SpaceSpec | undefined): { svg: string; description: string } | { error: string } {
  try {
    const spec = space ?? specOfParams(trial.parameters);
    const genotype = fromParams(spec, trial.parameters);
    const description = genotype.space === 'nb201' ? `NAS-Bench-201 cell \`${nb201ArchString(genotype)}\`` : `${genotype.space} architecture`;
    return { svg: drawGenotype(genotype), description };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * A sentence for each line drawn (almost) over an earlier one, which the chart alone cannot
 * show: same grid, and nowhere further apart than 1% of the chart's value range.
 */
function hiddenLines(series: readonly ChartSeries[]): string[] {
  const ys = series.flatMap((s) => [...s.points.map((p) => p.y), ...(s.band ?? []).flatMap((b) => [b.low, b.high])]);
  const tolerance = 0.01 * (Math.max(...ys) - Math.min(...ys));
  const covers = (a: ChartSeries, b: ChartSeries) =>
    a.points.length > 0 && a.points.length === b.points.length && a.points.every((p, i) => p.x === b.points[i]!.x && Math.abs(p.y - b.points[i]!.y) <= tolerance);
  const notes: string[] = [];
  series.forEach((s, i) => {
    const twin = series.slice(0, i).find((t) => covers(t, s));
    if (twin) notes.push(`The line of ${twin.name} is hidden under ${s.name}: their curves are (nearly) identical.`, '');
  });
  return notes;
}

const slug = (text: string): string => text.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'label';

/** Per-label summary of the sources, their notes and failures, and the full list folded away. */
function sourcesSection(runs: readonly LoadedRun[], failures: readonly SourceFailure[], defaultOptimize: Optimize): string[] {
  const labels = [...new Set(runs.map((r) => r.label))];
  const distinct = (values: string[]) => [...new Set(values)].join(', ');
  const rows = labels.map((label) => {
    const of = runs.filter((r) => r.label === label);
    const lengths = of.map((r) => r.trials.length);
    const [shortest, longest] = [Math.min(...lengths), Math.max(...lengths)];
    return [
      label,
      distinct(of.map((r) => r.kind)),
      distinct(of.map((r) => r.optimize ?? `${defaultOptimize} (assumed)`)),
      String(of.length),
      shortest === longest ? String(shortest) : `${shortest}–${longest}`,
      String(of.filter((r) => r.timed).length),
    ];
  });
  const out = [...table(['label', 'kind', 'direction', 'runs', 'trials per run', 'runs with times'], rows, 3), ''];
  if (runs.some((r) => !r.timed)) out.push('Sources without times (nnictl export files carry none) show "n/a" in the time tables and are left out of the time chart.', '');
  const noted = runs.filter((r) => r.notes.length);
  if (noted.length) out.push('### Notes per source', '', ...noted.map((r) => `- \`${r.source}\` (${r.label}): ${r.notes.join('; ')}`), '');
  if (failures.length) out.push('### Sources that could not be read', '', ...table(['source', 'problem'], failures.map((f) => [f.source, f.error]), 2), '');
  out.push(
    `<details><summary>All ${runs.length} runs read</summary>`,
    '',
    ...table(['label', 'source', 'kind', 'name', 'trials', 'times'], runs.map((r) => [r.label, r.source, r.kind, r.name, String(r.trials.length), r.timed ? 'yes' : 'no']), 4),
    '',
    '</details>',
    '',
  );
  return out;
}

const DIRECTION_TITLE: Record<Optimize, string> = {
  maximize: 'Maximised default metric (higher is better)',
  minimize: 'Minimised default metric (lower is better)',
};

export function buildReport(runs: readonly LoadedRun[], failures: readonly SourceFailure[], options: ReportOptions): Report {
  const files: Record<string, string> = {};
  const md: string[] = ['# Tuner comparison', ''];
  const groups = groupRuns(runs, options.defaultOptimize);
  const mixed = groups.size > 1;

  md.push('## Sources', '', ...sourcesSection(runs, failures, options.defaultOptimize));

  for (const [optimize, labelGroups] of groups) {
    const suffix = mixed ? `-${optimize}` : '';
    const longest = Math.max(0, ...labelGroups.flatMap((g) => g.runs.map((r) => r.run.trials.length)));
    const counts = [...new Set(options.trialCounts)].filter((k) => k >= 1 && k <= longest).sort((a, b) => a - b);
    const countPoints = (read: Reading) => [
      ...counts.map((k) => ({ head: `${k}`, value: (r: PreparedRun) => afterCount(r, k, read) })),
      { head: 'all', value: (r: PreparedRun) => afterCount(r, r.run.trials.length, read) },
    ];
    const timedRuns = (g: LabelGroup) => g.runs.filter((r) => r.timed);
    const durations = labelGroups.flatMap((g) => timedRuns(g).map((r) => r.timed!.seconds.at(-1)!));
    const longestSeconds = Math.max(0, ...durations);
    const times = options.minutes ? options.minutes.map((m) => m * 60) : autoTimes(durations);
    const timePoints = (read: Reading) => times.map((t) => ({ head: formatDuration(t), value: (r: PreparedRun) => atTime(r, t, read) }));
    const anyTimed = labelGroups.some((g) => timedRuns(g).length > 0);

    md.push(`## ${DIRECTION_TITLE[optimize]}`, '');
    md.push('### Best default metric after k trials', '', ...pointTable(labelGroups, countPoints(readMetric), (g) => g.runs), '');
    md.push('### Best default metric after t of wall time', '');
    if (anyTimed && times.length) md.push(...pointTable(labelGroups, timePoints(readMetric), timedRuns), '');
    else md.push('n/a: no source of this direction has times.', '');
    for (const key of options.extras) {
      md.push(`### \`${key}\` of the best trial (by default metric) after k trials`, '', ...pointTable(labelGroups, countPoints(readExtra(key)), (g) => g.runs), '');
      if (anyTimed && times.length) md.push(`### \`${key}\` of the best trial after t of wall time`, '', ...pointTable(labelGroups, timePoints(readExtra(key)), timedRuns), '');
    }
    const available = [...new Set(labelGroups.flatMap((g) => g.runs.flatMap((r) => r.run.trials.flatMap((t) => Object.keys(t.extra)))))].filter((k) => !options.extras.includes(k));
    if (available.length) md.push(`Other extra metrics in these sources (add with \`--report-extra\`): ${available.map((k) => `\`${k}\``).join(', ')}.`, '');

    md.push('### Best trial of each label', '');
    const bestRows: string[][] = [];
    const pictures: string[] = [];
    for (const group of labelGroups) {
      let best: { trial: ScoredTrial; run: LoadedRun } | undefined;
      for (const { run, bestIndex } of group.runs) {
        const trial = run.trials[bestIndex.at(-1)!]!;
        if (!best || (optimize === 'maximize' ? trial.metric > best.trial.metric : trial.metric < best.trial.metric)) best = { trial, run };
      }
      if (!best) continue;
      const decimals = decimalsFor([best.trial.metric]);
      const extras = options.extras.map((k) => {
        const value = best.trial.extra[k];
        return value === undefined ? '–' : typeof value === 'number' ? value.toFixed(decimalsFor([value])) : String(value);
      });
      const id = best.trial.parameter_id === null ? '' : `, parameter_id ${best.trial.parameter_id}`;
      bestRows.push([group.label, `${best.run.source}: trial ${best.trial.index}${id}`, best.trial.metric.toFixed(decimals), ...extras]);
      const drawn = drawBest(best.trial, options.space);
      if ('svg' in drawn) {
        let name = `best-${slug(group.label)}${suffix}.svg`;
        for (let i = 2; name in files; i++) name = `best-${slug(group.label)}${suffix}-${i}.svg`;
        files[name] = drawn.svg;
        pictures.push(`**${group.label}**: ${drawn.description}`, '', `![best architecture of ${group.label}](${name})`, '');
      } else pictures.push(`**${group.label}**: no picture, the parameters are not from one of our spaces (${drawn.error}): \`${JSON.stringify(best.trial.parameters)}\``, '');
    }
    md.push(...table(['label', 'where (trial = position in finishing order)', 'best default', ...options.extras], bestRows, 2), '', ...pictures);

    const yLabel = `best default metric (${optimize === 'maximize' ? 'higher' : 'lower'} is better)`;
    const trialsChart = `best-vs-trials${suffix}.svg`;
    const xs = trialGrid(longest);
    const trialSeries = labelGroups.map((g) => seriesOf(g.label, xs, g.runs.map((r) => xs.map((k) => afterCount(r, k, readMetric)))));
    files[trialsChart] = lineChart({ title: 'Best default metric vs. trials (mean ± std over runs)', xLabel: 'finished trials', yLabel, series: trialSeries });
    md.push('### Charts', '', `![best vs trials](${trialsChart})`, '', ...hiddenLines(trialSeries));
    if (anyTimed) {
      const unit = longestSeconds < 120 ? { name: 'seconds', scale: 1 } : longestSeconds < 7200 ? { name: 'minutes', scale: 60 } : { name: 'hours', scale: 3600 };
      // Runs of very different durations (a table benchmark beside a real NNI experiment) need a log axis to be seen at all.
      const firstResult = Math.min(...labelGroups.flatMap((g) => timedRuns(g).map((r) => r.timed!.seconds[0]!)).filter((t) => t > 0));
      const logX = Math.max(...durations) / Math.min(...durations.filter((d) => d > 0)) > 10 && Number.isFinite(firstResult);
      const grid = logX ? logTimeGrid(firstResult, longestSeconds) : timeGrid(longestSeconds);
      const timeChart = `best-vs-time${suffix}.svg`;
      // Untimed labels keep their legend entry (and so every label keeps its colour across charts).
      const timeSeries = labelGroups.map((g) =>
        timedRuns(g).length
          ? seriesOf(g.label, grid, timedRuns(g).map((r) => grid.map((t) => atTime(r, t, readMetric))), unit.scale)
          : { name: `${g.label} (no times)`, points: [] },
      );
      files[timeChart] = lineChart({
        title: 'Best default metric vs. wall time (mean ± std over runs)',
        xLabel: `wall time (${unit.name}${logX ? ', log scale' : ''})`,
        yLabel,
        logX,
        series: timeSeries,
      });
      md.push(`![best vs time](${timeChart})`, '', ...hiddenLines(timeSeries));
    } else md.push('No time chart: no source of this direction has times.', '');
  }
  if (groups.size > 1) {
    const labels = [...groups.values()].map((gs) => new Set(gs.map((g) => g.label)));
    const both = [...labels[0]!].filter((l) => labels[1]!.has(l));
    if (both.length) md.push(`Note: label(s) ${both.join(', ')} have runs of both directions; they are reported separately under each.`, '');
  }

  md.push(
    '## How to read this',
    '',
    '- Cells are mean ± sample standard deviation over the runs of a label; a single run shows its value alone.',
    '- Best after k trials: the best default metric among the first k finished trials, in finishing order; "all" is each run\'s final best, whatever its length.',
    '- A curve stops where its run stopped: a run is never extended past its last trial. Where fewer than all runs of a label reached a point, the mean is over those that did and the cell says (n/N). The charts draw the mean of a label only where at least half of its runs have a value; it can still jump where a run drops out, and the band needs two runs.',
    '- Best after t: the best among trials whose metric was known by time t. Run directories count time from their start; NNI REST sources from their first trial\'s start (NNI\'s own start-up is not counted).',
    '- The extra-metric tables read that metric off the best-by-default trial (the NAS-Bench-201 protocol: test accuracy of the best-by-validation cell).',
    '- Trials without a final default metric (failed, still running, unreadable) are left out and counted in the source notes.',
    '',
  );
  return { markdown: md.join('\n'), files };
}
