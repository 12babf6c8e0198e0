/*
 * Statistics for comparing search strategies: best-so-far curves by trial count and by time,
 * their aggregation over repeated runs of different lengths, and mean/std/standard error.
 * Pure functions on plain arrays; compare/report.ts turns them into tables and charts.
 *
 * Runs of different lengths: a curve stops where its run stopped, it is never extended. At each
 * point, mean and spread are over the runs that reached that point, and `n` says how many did.
 * The mean can therefore jump where a run drops out; reports show n wherever it is below the
 * number of runs.
 */
import type { Optimize } from '../common/results.js';

export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); NaN for a single value. */
  std: number;
  /** Standard error of the mean, std / √n; NaN for a single value. */
  sem: number;
  min: number;
  max: number;
}

/** Summary of the finite values, or null when there are none. */
export function summarize(values: readonly number[]): Summary | null {
  const xs = values.filter(Number.isFinite);
  const n = xs.length;
  if (n === 0) return null;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : Number.NaN;
  return { n, mean, std, sem: std / Math.sqrt(n), min: Math.min(...xs), max: Math.max(...xs) };
}

/** True when `candidate` is strictly better than `incumbent`; ties keep the earlier trial. */
export const isBetter = (candidate: number, incumbent: number, optimize: Optimize): boolean =>
  optimize === 'maximize' ? candidate > incumbent : candidate < incumbent;

/** Index of the best trial among the first k+1, for every k (null metrics are skipped; -1 before the first metric). */
export function bestIndexSoFar(metrics: readonly (number | null)[], optimize: Optimize): number[] {
  let best = -1;
  return metrics.map((m, i) => {
    if (m !== null && Number.isFinite(m) && (best < 0 || isBetter(m, metrics[best]!, optimize))) best = i;
    return best;
  });
}

/** Best metric among the first k+1 trials, for every k. */
export function bestSoFar(metrics: readonly number[], optimize: Optimize): number[] {
  return bestIndexSoFar(metrics, optimize).map((i) => metrics[i]!);
}

/**
 * Value of a per-trial curve after `count` trials (count ≥ 1), or undefined when the run
 * stopped before that many trials.
 */
export const afterTrials = <T>(curve: readonly T[], count: number): T | undefined => (count <= curve.length ? curve[count - 1] : undefined);

/**
 * Position of the last trial finished by time t in a run whose trial times are `seconds`
 * (non-decreasing), or undefined when no trial had finished yet or the run had already
 * stopped (t is past its last trial).
 */
export function trialAtTime(seconds: readonly number[], t: number): number | undefined {
  if (seconds.length === 0 || t < seconds[0]! || t > seconds[seconds.length - 1]!) return undefined;
  // Binary search for the last time ≤ t.
  let low = 0;
  let high = seconds.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (seconds[mid]! <= t) low = mid;
    else high = mid - 1;
  }
  return low;
}

export interface AggregatePoint {
  x: number;
  /** Runs that have a value at x. */
  n: number;
  mean: number;
  std: number;
  sem: number;
}

/**
 * Aggregates runs point by point: `samples[r][i]` is run r's value at xs[i], or undefined where
 * the run has none (not started or already stopped). Points where no run has a value are left out.
 */
export function aggregate(xs: readonly number[], samples: readonly (readonly (number | undefined)[])[]): AggregatePoint[] {
  const points: AggregatePoint[] = [];
  xs.forEach((x, i) => {
    const summary = summarize(samples.map((run) => run[i]).filter((v): v is number => v !== undefined));
    if (summary) points.push({ x, n: summary.n, mean: summary.mean, std: summary.std, sem: summary.sem });
  });
  return points;
}

/** Trial counts 1…max, thinned to about `limit` evenly spaced counts (the last one always kept). */
export function trialGrid(max: number, limit = 400): number[] {
  if (max <= limit) return Array.from({ length: max }, (_, i) => i + 1);
  const grid = new Set<number>();
  for (let i = 0; i < limit; i++) grid.add(1 + Math.round((i * (max - 1)) / (limit - 1)));
  return [...grid];
}

/** `count` + 1 evenly spaced times from 0 to `end`. */
export const timeGrid = (end: number, count = 300): number[] => Array.from({ length: count + 1 }, (_, i) => (end * i) / count);

/** `count` + 1 geometrically spaced times from `start` (> 0) to `end`, for a log time axis. */
export const logTimeGrid = (start: number, end: number, count = 300): number[] =>
  Array.from({ length: count + 1 }, (_, i) => (i === count ? end : start * (end / start) ** (i / count)));
