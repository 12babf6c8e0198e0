/*
 * `nni-enas bench trial-start`: how long a shared-mode trial takes from process start to its
 * first step (the reward's first scoring batch), phase by phase, as NNI starts it: a fresh Node
 * process per trial, the weight store already written by earlier trials. The phases are the
 * trial's own `timings:` line (trial/outputs.ts Phases, counted from process start, so Node's
 * start-up is in the first): start-up (Node, modules, the parameters), backend (TensorFlow.js and
 * its backend), data (loaded, split, normalised), store load, model (the supernet built). Several
 * checkouts (e.g. before and after a change) take turns trial by trial, so that background load
 * weighs on all of them alike.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_SPECS, fromTokens, toParams, uniformTokens } from '../search-spaces/spaces.js';
import type { BackendName } from '../trial/backend.js';
import { median } from './stats.js';

export const TRIAL_START_SPACES = ['micro', 'macro', 'rnn'] as const;
export type TrialStartSpace = (typeof TRIAL_START_SPACES)[number];

/** The phases before the first step, in the order the trial runs them. */
export const START_PHASES = ['start-up', 'backend', 'data', 'store load', 'model'] as const;

export interface TrialStartOptions {
  spaces: readonly TrialStartSpace[];
  /** Timed trials per (checkout, space), after one that creates the store. */
  runs: number;
  repos: string[];
  backend: BackendName;
  log: (line: string) => void;
}

export interface TrialStartResult {
  repo: string;
  space: TrialStartSpace;
  /** Milliseconds per phase, one entry per timed trial. */
  phases: Record<string, number[]>;
  /** Process start → first step of each timed trial. */
  firstStepMs: number[];
  /** The first trial, which also computes the init and writes the store. */
  firstTrialMs: Record<string, number>;
  load: number;
}

/** The dataset flags of each space, as config.yml and examples/*.yml pass them. */
function spaceFlags(space: TrialStartSpace, repo: string): string[] {
  return space === 'rnn' ? ['--dataset', 'ptb', '--data-dir', resolve(repo, '..', 'shared', 'data', 'kjv-ptb')] : ['--dataset', 'fashion-mnist'];
}

/** Phase → ms from a trial's "timings: start-up 0.41 s, backend 0.23 s, … (total 9.1 s)" line. */
export function parseTimings(stdout: string): Record<string, number> {
  const line = /^timings: (.*) \(total [\d.]+ s\)/m.exec(stdout)?.[1];
  if (!line) throw new Error(`no timings line in the trial's output:\n${stdout.slice(-500)}`);
  return Object.fromEntries(
    line.split(', ').map((part) => {
      const match = /^(.+) ([\d.]+) s$/.exec(part);
      if (!match) throw new Error(`cannot read the phase "${part}"`);
      return [match[1]!, Number(match[2]) * 1000];
    }),
  );
}

/** Sum of the phases before the first step. */
export const toFirstStepMs = (phases: Record<string, number>): number => START_PHASES.reduce((sum, name) => sum + (phases[name] ?? 0), 0);

function runTrial(repo: string, space: TrialStartSpace, dir: string, backend: BackendName): Record<string, number> {
  const spec = DEFAULT_SPECS[space];
  const params = toParams(fromTokens(spec, uniformTokens(spec, 0, 0)), spec);
  const args = [join(repo, 'dist', 'trial', 'main.js'), '--mode', 'shared', ...spaceFlags(space, repo), '--backend', backend];
  args.push('--store', join(dir, 'store'), '--output', join(dir, 'out'), '--params', JSON.stringify(params), '--train-steps', '1', '--valid-batches', '1');
  const run = spawnSync(process.execPath, args, { cwd: repo, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`trial in ${repo} (${space}) failed: ${(run.stderr || run.stdout).trim().split('\n').pop()}`);
  return parseTimings(run.stdout);
}

export function benchTrialStart(options: TrialStartOptions): TrialStartResult[] {
  const results: TrialStartResult[] = [];
  for (const space of options.spaces) {
    const dirs = options.repos.map(() => mkdtempSync(join(tmpdir(), `nni-enas-trial-start-${space}-`)));
    try {
      const spaceResults = options.repos.map((repo, i): TrialStartResult => ({ repo, space, phases: {}, firstStepMs: [], firstTrialMs: runTrial(repo, space, dirs[i]!, options.backend), load: loadavg()[0]! }));
      for (let run = 0; run < options.runs; run++) {
        options.repos.forEach((repo, i) => {
          const timings = runTrial(repo, space, dirs[i]!, options.backend);
          for (const [name, ms] of Object.entries(timings)) (spaceResults[i]!.phases[name] ??= []).push(ms);
          spaceResults[i]!.firstStepMs.push(toFirstStepMs(timings));
          options.log(`${space}: ${repo}: trial ${run + 1}/${options.runs}: first step after ${Math.round(toFirstStepMs(timings))} ms`);
        });
      }
      for (const result of spaceResults) result.load = (result.load + loadavg()[0]!) / 2;
      results.push(...spaceResults);
    } finally {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}

/** A markdown table: median ms per phase before the first step, per checkout and space. */
export function formatTrialStart(results: readonly TrialStartResult[], backend: BackendName): string {
  const header = ['space', 'checkout', ...START_PHASES, 'to first step', 'first trial (writes the store)', 'load'];
  const rows = results.map((r) => {
    const medians = START_PHASES.map((name) => (r.phases[name] ? median(r.phases[name]!) : 0));
    return [r.space, r.repo, ...medians.map((ms) => Math.round(ms).toString()), Math.round(median(r.firstStepMs)).toString(), Math.round(toFirstStepMs(r.firstTrialMs)).toString(), r.load.toFixed(1)];
  });
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i < 2 ? ':--' : '--:')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    `Milliseconds, median over the timed trials, backend ${backend}; a fresh process per trial with the store of earlier trials present ` +
      '(its phases: the trial\'s own timings line, counted from process start). "to first step": their sum, up to the first scoring batch. ' +
      'Load: the 1-minute load average around the runs.',
  ].join('\n');
}

/** Writes the results as JSON lines (every trial's phases). */
export function writeTrialStartJson(path: string, results: readonly TrialStartResult[]): void {
  writeFileSync(path, results.map((r) => JSON.stringify(r)).join('\n') + '\n');
}
