/*
 * `nni-enas bench search-quality`: does the controller help? For each search seed s, an ENAS
 * search and a random-with-sharing search (policy random, the paper's baseline, ENAS.md §4) with
 * the same budget, each closing with its own derive (best.json); then the ENAS-derived cell, the
 * random search's best cell and K uniformly random cells (drawn once, shared by all seeds) are
 * retrained with the same recipe, and their test scores are tabulated: mean ± sd per group, and
 * ENAS − random-sharing (paired by seed) and ENAS − random cells (Welch) with standard errors.
 *
 * Every piece is a child process of the nni-enas command line (`search`, `retrain`), its output
 * in a log file in its own directory: a crashing piece stops the bench with one line naming it
 * and its log, and a rerun skips finished pieces and resumes interrupted ones with --resume.
 *
 * The output directory:
 *   enas-s<s>/, random-s<s>/                                   searches (settings.json, …, best.json)
 *   retrain-enas-s<s>/, retrain-random-s<s>/, retrain-cell<k>/  retrainings (retrain.json, …, result.json)
 *   <piece>/bench.log          the piece's stdout and stderr, appended run after run
 *   <piece>/bench-time.json    wall seconds of the bench's processes for the piece, summed over resumes
 *   search-quality.md, search-quality.json
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { dirname, join, relative, resolve } from 'node:path';
import { writeFileAtomic } from '../common/files.js';
import { BEST_JSON } from '../embedded/architectures.js';
import { count, formatDuration } from '../embedded/progress.js';
import type { PresetName } from '../embedded/presets.js';
import { checkSchedule, readSettings, resolveSearchSettings, SETTINGS_FILE, type SearchOverrides, type SearchSettings } from '../embedded/settings.js';
import type { BackendName } from '../trial/backend.js';
import { overridesFromFlags, type SearchFlagValues } from '../embedded/search-flags.js';

// ---------------------------------------------------------------------------------------------
// Statistics

export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); null for a single value. */
  sd: number | null;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error('internal: summarize needs at least one value');
  const n = values.length;
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  const sd = n < 2 ? null : Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1));
  return { n, mean, sd };
}

export interface Difference {
  /** Mean of a minus mean of b. */
  mean: number;
  /** Its standard error; null when a group has too few members to estimate it. */
  se: number | null;
  /** Degrees of freedom for a t reading of mean / se (Welch–Satterthwaite for the unpaired one); null with se. */
  df: number | null;
}

/** a − b paired member by member (the same search seed): the mean of the differences and its SE, sd(d)/√n. */
export function pairedDifference(a: readonly number[], b: readonly number[]): Difference {
  if (a.length !== b.length) throw new Error(`internal: paired groups of ${a.length} and ${b.length}`);
  const d = summarize(a.map((value, i) => value - b[i]!));
  return { mean: d.mean, se: d.sd === null ? null : d.sd / Math.sqrt(d.n), df: d.sd === null ? null : d.n - 1 };
}

/** a − b for independent groups: Welch's SE, √(s_a²/n_a + s_b²/n_b), and the Welch–Satterthwaite degrees of freedom. */
export function welchDifference(a: readonly number[], b: readonly number[]): Difference {
  const [x, y] = [summarize(a), summarize(b)];
  const mean = x.mean - y.mean;
  if (x.sd === null || y.sd === null) return { mean, se: null, df: null };
  const [va, vb] = [x.sd ** 2 / x.n, y.sd ** 2 / y.n];
  const se = Math.sqrt(va + vb);
  // Two constant groups: no spread to attribute degrees of freedom to.
  const df = va + vb === 0 ? null : (va + vb) ** 2 / (va ** 2 / (x.n - 1) + vb ** 2 / (y.n - 1));
  return { mean, se, df };
}

// ---------------------------------------------------------------------------------------------
// Settings

/** Search flags the bench passes to every search (it sets --preset, --seed, --policy, --out, --workers itself). */
export type SearchFlags = SearchFlagValues;

export interface SearchQualityOptions {
  /** config.yml (resolved against the working directory). */
  config: string;
  seeds: number;
  randomCells: number;
  /** Output directory; default runs/search-quality-<experimentName>-<preset> under the working directory. */
  out?: string;
  preset: PresetName;
  retrainPreset: PresetName;
  /** Pass-through search flags the user gave. */
  searchFlags: SearchFlags;
  /** Every piece's TensorFlow.js backend (default: the fastest that loads). */
  backend?: BackendName;
  /** Pieces run at once; above 1 each search trains in one worker thread. */
  parallel: number;
  log(line: string): void;
}

/** The overrides `nni-enas search` builds from the same flags (cli/search.ts), to resolve and check a search before running it. */
function searchOverrides(options: SearchQualityOptions, policy: 'enas' | 'random', seed: number): SearchOverrides {
  return { ...overridesFromFlags(options.searchFlags), preset: options.preset, policy, seed, backend: options.backend };
}

/** Where two JSON values first differ, e.g. "schedule.epochs: 3 there, 2 here"; null when equal. */
function firstDifference(there: unknown, here: unknown, path = ''): string | null {
  if (isDeepStrictEqual(there, here)) return null;
  if (there && here && typeof there === 'object' && typeof here === 'object' && !Array.isArray(there) && !Array.isArray(here)) {
    const a = there as Record<string, unknown>;
    const b = here as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const found = firstDifference(a[key], b[key], path ? `${path}.${key}` : key);
      if (found) return found;
    }
  }
  return `${path || 'value'}: ${JSON.stringify(there)} there, ${JSON.stringify(here)} here`;
}

// ---------------------------------------------------------------------------------------------
// Pieces

type Group = 'enas' | 'randomSharing' | 'randomCells';
const GROUP_LABELS: Record<Group, string> = {
  enas: 'ENAS derived',
  randomSharing: 'random-with-sharing best',
  randomCells: 'uniformly random cells',
};

interface Piece {
  /** Its directory's name under the output directory, e.g. enas-s0, retrain-cell3. */
  name: string;
  kind: 'search' | 'retrain';
  dir: string;
  /** The file whose presence means the piece is done. */
  output: string;
  /** Pieces whose outputs this one reads. */
  needs: Piece[];
  /** Command-line arguments of `nni-enas`, fresh or resuming. */
  args(resume: boolean): string[];
  /** True when its directory holds the piece started (to resume, or done); throws if it was made with other settings than this run's. */
  checkStarted(): boolean;
  /** Retrainings: the group and seed (search seed, or random-cell seed) the score belongs to. */
  member?: { group: Group; seed: number };
}

const LOG_FILE = 'bench.log';
const TIME_FILE = 'bench-time.json';
const RETRAIN_SETTINGS = 'retrain.json';
const RESULT_FILE = 'result.json';
const TABLE_MD = 'search-quality.md';
const TABLE_JSON = 'search-quality.json';

function planPieces(options: SearchQualityOptions, out: string, settingsOf: (policy: 'enas' | 'random', seed: number) => SearchSettings): Piece[] {
  const config = resolve(options.config);
  const workers = options.parallel > 1 ? ['--workers', '1'] : [];
  const backend = options.backend ? ['--backend', options.backend] : [];
  const flags = Object.entries(options.searchFlags).flatMap(([flag, value]) => [`--${flag}`, String(value)]);
  // A resumed search keeps its own settings and refuses the flags that made them, except --epochs (equal here: checkStarted).
  const resumeFlags = options.searchFlags.epochs === undefined ? [] : ['--epochs', String(options.searchFlags.epochs)];

  const search = (policy: 'enas' | 'random', seed: number): Piece => {
    const name = `${policy}-s${seed}`;
    const dir = join(out, name);
    return {
      name,
      kind: 'search',
      dir,
      output: join(dir, BEST_JSON),
      needs: [],
      args: (resume) =>
        resume
          ? ['search', '--config', config, '--out', dir, '--resume', ...resumeFlags, ...workers, ...backend]
          : ['search', '--config', config, '--preset', options.preset, '--seed', String(seed), '--policy', policy, '--out', dir, ...flags, ...workers, ...backend],
      checkStarted: () => {
        if (!existsSync(join(dir, SETTINGS_FILE))) return false;
        const wanted = JSON.parse(JSON.stringify(settingsOf(policy, seed)));
        const difference = firstDifference(readSettings(dir), wanted);
        if (difference) throw new Error(`${dir} holds a search with other settings (${difference}); pass another --out`);
        return true;
      },
    };
  };

  const retrain = (name: string, from: Piece, member: NonNullable<Piece['member']>, randomSeed: number | null): Piece => {
    const dir = join(out, name);
    const arch = from.output;
    return {
      name,
      kind: 'retrain',
      dir,
      output: join(dir, RESULT_FILE),
      needs: [from],
      member,
      args: (resume) =>
        resume
          ? ['retrain', '--arch', arch, '--out', dir, '--resume', ...backend]
          : ['retrain', '--arch', arch, '--preset', options.retrainPreset, '--out', dir, ...(randomSeed === null ? [] : ['--random-arch', String(randomSeed)]), ...backend],
      checkStarted: () => {
        const path = join(dir, RETRAIN_SETTINGS);
        if (!existsSync(path)) return false;
        const saved = JSON.parse(readFileSync(path, 'utf8')) as { arch: string; preset: string; randomSeed: number | null };
        // The architecture by its place in the output directory, so that a moved directory still continues.
        const place = (path: string) => relative(dirname(dirname(path)), path);
        const difference = firstDifference(
          { arch: place(saved.arch), preset: saved.preset, randomSeed: saved.randomSeed },
          { arch: place(arch), preset: options.retrainPreset, randomSeed },
        );
        if (difference) throw new Error(`${dir} holds a retraining with other settings (${difference}); pass another --out`);
        return true;
      },
    };
  };

  const pieces: Piece[] = [];
  const seedPieces = (seed: number) => {
    const enas = search('enas', seed);
    const random = search('random', seed);
    pieces.push(
      enas,
      random,
      retrain(`retrain-enas-s${seed}`, enas, { group: 'enas', seed }, null),
      retrain(`retrain-random-s${seed}`, random, { group: 'randomSharing', seed }, null),
    );
    return enas;
  };
  // Seed 0 first, then the random cells (any search's best.json names the space and data; seed 0's is
  // the first there), then the other seeds: every kind of piece is timed early, for the ETA.
  const first = seedPieces(0);
  for (let k = 1; k <= options.randomCells; k++) pieces.push(retrain(`retrain-cell${k}`, first, { group: 'randomCells', seed: k }, k));
  for (let seed = 1; seed < options.seeds; seed++) seedPieces(seed);
  return pieces;
}

const isDone = (piece: Piece) => existsSync(piece.output);

function recordedSeconds(piece: Piece): number | null {
  const path = join(piece.dir, TIME_FILE);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { seconds: number }).seconds : null;
}

function addSeconds(piece: Piece, seconds: number): void {
  const before = existsSync(join(piece.dir, TIME_FILE)) ? (JSON.parse(readFileSync(join(piece.dir, TIME_FILE), 'utf8')) as { seconds: number; runs: number }) : { seconds: 0, runs: 0 };
  writeFileAtomic(join(piece.dir, TIME_FILE), `${JSON.stringify({ seconds: before.seconds + seconds, runs: before.runs + 1 })}\n`);
}

/** The last non-empty line of a log (the child's one-line error), shortened. */
function lastLine(path: string): string {
  const lines = readFileSync(path, 'utf8').split('\n').filter((line) => line.trim() !== '');
  const line = lines.at(-1) ?? '(empty log)';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

interface Running {
  piece: Piece;
  child: ChildProcess;
  started: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The nni-enas command line this module was compiled beside (dist/cli/main.js). */
const cliPath = (): string => fileURLToPath(new URL('../cli/main.js', import.meta.url));

function startPiece(piece: Piece, resume: boolean): Running {
  mkdirSync(piece.dir, { recursive: true });
  const args = piece.args(resume);
  const fd = openSync(join(piece.dir, LOG_FILE), 'a');
  writeSync(fd, `== ${new Date().toISOString()} nni-enas ${args.join(' ')}\n`);
  // Its own process group: a terminal's Ctrl-C reaches only the bench, which passes one SIGINT on
  // (two would make the piece quit without its checkpoint, embedded/interrupt.ts).
  const child = spawn(process.execPath, [cliPath(), ...args], { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((settle) => {
    child.on('exit', (code, signal) => settle({ code, signal }));
    child.on('error', () => settle({ code: null, signal: null }));
  });
  return { piece, child, started: performance.now(), exit };
}

/** Seconds still to go: pieces not started at their kind's mean, running ones at what is left of it, shared by `parallel`; null while a kind with work left is untimed. */
export function overallEta(
  means: Partial<Record<Piece['kind'], number>>,
  waiting: readonly Piece['kind'][],
  running: readonly { kind: Piece['kind']; elapsed: number }[],
  parallel: number,
): number | null {
  let seconds = 0;
  for (const kind of waiting) {
    const mean = means[kind];
    if (mean === undefined) return null;
    seconds += mean;
  }
  for (const { kind, elapsed } of running) {
    const mean = means[kind];
    if (mean === undefined) return null;
    seconds += Math.max(0, mean - elapsed);
  }
  return seconds / parallel;
}

// ---------------------------------------------------------------------------------------------
// The run

export interface SearchQualityTable {
  format: 'nni-enas-search-quality/1';
  config: string;
  space: SearchSettings['spec']['space'];
  metric: 'test accuracy' | 'test perplexity';
  higherIsBetter: boolean;
  settings: { seeds: number; randomCells: number; preset: PresetName; retrainPreset: PresetName; searchFlags: SearchFlags };
  groups: Record<Group, Summary & { members: { piece: string; seed: number; score: number }[] }>;
  differences: { enasMinusRandomSharing: Difference & { how: string }; enasMinusRandomCells: Difference & { how: string } };
  pieces: { piece: string; kind: Piece['kind']; dir: string; log: string; score: number | null; wallSeconds: number | null }[];
}

export type SearchQualityOutcome = { stopped: true } | { stopped: false; table: SearchQualityTable; markdown: string; files: string[] };

/** A piece that crashed or ended without its output: a run-time failure, not bad input. */
export class PieceFailure extends Error {}

/**
 * Checks everything (config, flags, existing piece directories) before writing anything, runs the
 * pieces not done yet, and writes and returns the table. A piece that fails stops the bench with
 * an error naming it and its log; SIGINT/SIGTERM checkpoint the running pieces and return {stopped}.
 */
export async function runSearchQuality(options: SearchQualityOptions): Promise<SearchQualityOutcome> {
  for (const [flag, value, minimum] of [
    ['--seeds', options.seeds, 1],
    ['--random-cells', options.randomCells, 1],
    ['--parallel', options.parallel, 1],
  ] as const)
    if (!(Number.isInteger(value) && value >= minimum)) throw new Error(`${flag} must be an integer >= ${minimum}, got ${value}`);
  const settingsCache = new Map<string, SearchSettings>();
  const settingsOf = (policy: 'enas' | 'random', seed: number): SearchSettings => {
    const key = `${policy}-${seed}`;
    if (!settingsCache.has(key)) {
      const { settings } = resolveSearchSettings(options.config, searchOverrides(options, policy, seed));
      checkSchedule(settings.schedule);
      settingsCache.set(key, settings);
    }
    return settingsCache.get(key)!;
  };
  const { spec, experimentName } = settingsOf('enas', 0);
  const out = resolve(options.out ?? join('runs', `search-quality-${experimentName}-${options.preset}`));
  if (existsSync(out) && !statSync(out).isDirectory()) throw new Error(`--out ${out} is a file, not a directory`);
  const pieces = planPieces(options, out, settingsOf);
  // Done pieces are checked too: a table must not mix pieces made with other settings.
  const startedBefore = new Set(pieces.filter((piece) => piece.checkStarted() && !isDone(piece)));

  const log = options.log;
  const benchStart = performance.now();
  const clock = () => `[${formatDuration((performance.now() - benchStart) / 1000)}]`;
  // Paths under the working directory relative to it, others in full.
  const show = (path: string) => {
    const near = relative(process.cwd(), path);
    return near === '' || near.startsWith('..') ? path : near;
  };
  for (const piece of pieces) if (isDone(piece)) log(`${clock()} skip ${piece.name}: ${show(piece.output)} exists`);

  const waiting = pieces.filter((piece) => !isDone(piece));
  const running = new Set<Running>();
  const durations: Record<Piece['kind'], number[]> = { search: [], retrain: [] };
  let finished = pieces.length - waiting.length;
  let stopping = false;
  let failure: Error | null = null;
  // One SIGINT asks a piece to checkpoint and stop; a second makes it quit at once (embedded/interrupt.ts).
  const stopRunning = () => {
    stopping = true;
    for (const { child } of running) child.kill('SIGINT');
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) log(`${signal}: the running pieces write their checkpoints and stop; run the same command again to continue`);
    stopRunning();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    while (running.size > 0 || (waiting.length > 0 && !stopping)) {
      while (!stopping && running.size < options.parallel) {
        const next = waiting.find((piece) => piece.needs.every(isDone));
        if (!next) break;
        waiting.splice(waiting.indexOf(next), 1);
        const resume = startedBefore.has(next);
        running.add(startPiece(next, resume));
        log(`${clock()} ${resume ? 'resume' : 'start'} ${next.name} (${next.kind}; log ${show(join(next.dir, LOG_FILE))})`);
      }
      if (running.size === 0) break;
      const { run, exit } = await Promise.race([...running].map((run) => run.exit.then((exit) => ({ run, exit }))));
      running.delete(run);
      const seconds = (performance.now() - run.started) / 1000;
      addSeconds(run.piece, seconds);
      const { piece } = run;
      if (exit.code === 0 && isDone(piece)) {
        finished++;
        durations[piece.kind].push(recordedSeconds(piece)!);
        const mean = (kind: Piece['kind']) => (durations[kind].length ? durations[kind].reduce((a, b) => a + b, 0) / durations[kind].length : undefined);
        const now = performance.now();
        const eta = overallEta(
          { search: mean('search'), retrain: mean('retrain') },
          waiting.map((p) => p.kind),
          [...running].map((r) => ({ kind: r.piece.kind, elapsed: (now - r.started) / 1000 })),
          options.parallel,
        );
        log(`${clock()} done ${piece.name} in ${formatDuration(seconds)} (${finished}/${pieces.length} pieces)${eta === null ? '' : `, ETA ${formatDuration(eta)}`}`);
        continue;
      }
      if (stopping && !failure) {
        log(`${clock()} stopped ${piece.name} after ${formatDuration(seconds)}`);
        continue;
      }
      const logPath = join(piece.dir, LOG_FILE);
      const how = exit.code === 0 ? `ended without ${show(piece.output)}` : exit.code !== null ? `exited with code ${exit.code}` : `was killed (${exit.signal ?? 'no exit code'})`;
      failure ??= new PieceFailure(`${piece.kind} ${piece.name} ${how}: ${lastLine(logPath)} (log: ${show(logPath)})`);
      // Let the others checkpoint, then report the failure.
      if (!stopping) stopRunning();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure) throw failure;
  if (stopping) return { stopped: true };

  const table = tabulate(options, spec.space, pieces);
  const markdown = formatTable(table);
  const files = [join(out, TABLE_MD), join(out, TABLE_JSON)];
  writeFileAtomic(files[0]!, markdown);
  writeFileAtomic(files[1]!, `${JSON.stringify(table, null, 2)}\n`);
  return { stopped: false, table, markdown, files };
}

function tabulate(options: SearchQualityOptions, space: SearchQualityTable['space'], pieces: Piece[]): SearchQualityTable {
  const text = space === 'rnn';
  const scoreOf = (piece: Piece): number => {
    const result = JSON.parse(readFileSync(piece.output, 'utf8')) as { test: { accuracy: number | null; perplexity: number | null } };
    const score = text ? result.test.perplexity : result.test.accuracy;
    if (typeof score !== 'number') throw new Error(`${piece.output}: no test ${text ? 'perplexity' : 'accuracy'}`);
    return score;
  };
  const scores = new Map(pieces.filter((piece) => piece.member).map((piece) => [piece, scoreOf(piece)]));
  const group = (name: Group) => {
    const members = pieces.filter((piece) => piece.member?.group === name).map((piece) => ({ piece: piece.name, seed: piece.member!.seed, score: scores.get(piece)! }));
    return { ...summarize(members.map((m) => m.score)), members };
  };
  const groups = { enas: group('enas'), randomSharing: group('randomSharing'), randomCells: group('randomCells') };
  const values = (name: Group) => groups[name].members.map((m) => m.score);
  return {
    format: 'nni-enas-search-quality/1',
    config: resolve(options.config),
    space,
    metric: text ? 'test perplexity' : 'test accuracy',
    higherIsBetter: !text,
    settings: { seeds: options.seeds, randomCells: options.randomCells, preset: options.preset, retrainPreset: options.retrainPreset, searchFlags: options.searchFlags },
    groups,
    differences: {
      enasMinusRandomSharing: { ...pairedDifference(values('enas'), values('randomSharing')), how: 'paired by search seed' },
      enasMinusRandomCells: { ...welchDifference(values('enas'), values('randomCells')), how: 'Welch (independent groups)' },
    },
    pieces: pieces.map((piece) => ({
      piece: piece.name,
      kind: piece.kind,
      dir: piece.dir,
      log: join(piece.dir, LOG_FILE),
      score: scores.get(piece) ?? null,
      wallSeconds: recordedSeconds(piece),
    })),
  };
}

/** The table as Markdown: the groups, the two differences, then every piece with its wall time. */
export function formatTable(table: SearchQualityTable): string {
  const digits = table.higherIsBetter ? 4 : 2;
  const fixed = (value: number | null) => (value === null ? '—' : value.toFixed(digits));
  const signed = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)}`;
  const { settings } = table;
  const flags = Object.entries(settings.searchFlags).map(([flag, value]) => `--${flag} ${value}`);
  const lines = [
    `# Does the controller help? ${table.space} space`,
    '',
    `Config ${table.config}; ${count(settings.seeds, 'search seed')}, ${count(settings.randomCells, 'uniformly random cell')}; ` +
      `search preset ${settings.preset}${flags.length ? ` with ${flags.join(' ')}` : ''}, every cell retrained with preset ${settings.retrainPreset}. ` +
      `Score: ${table.metric} (${table.higherIsBetter ? 'higher' : 'lower'} is better).`,
    '',
    `| group | n | ${table.metric}, mean ± sd | members |`,
    '|---|---|---|---|',
    ...(Object.keys(GROUP_LABELS) as Group[]).map((name) => {
      const group = table.groups[name];
      return `| ${GROUP_LABELS[name]} | ${group.n} | ${fixed(group.mean)} ± ${fixed(group.sd)} | ${group.members.map((m) => fixed(m.score)).join(', ')} |`;
    }),
    '',
    '| difference | mean | SE | df | how |',
    '|---|---|---|---|---|',
    ...(
      [
        ['ENAS − random-with-sharing', table.differences.enasMinusRandomSharing],
        ['ENAS − uniformly random cells', table.differences.enasMinusRandomCells],
      ] as const
    ).map(([label, d]) => `| ${label} | ${signed(d.mean)} | ${fixed(d.se)} | ${d.df === null ? '—' : d.df.toFixed(1)} | ${d.how} |`),
    '',
    '| piece | kind | score | wall time |',
    '|---|---|---|---|',
    ...table.pieces.map((p) => `| ${p.piece} | ${p.kind} | ${fixed(p.score)} | ${p.wallSeconds === null ? '—' : formatDuration(p.wallSeconds)} |`),
    '',
  ];
  const timed = table.pieces.filter((p) => p.wallSeconds !== null);
  if (timed.length)
    lines.push(`Wall time of the pieces, summed: ${formatDuration(timed.reduce((sum, p) => sum + p.wallSeconds!, 0))}${timed.length < table.pieces.length ? ' (pieces run outside the bench are not timed)' : ''}.`, '');
  return lines.join('\n');
}
