/*
 * The one results format that our embedded runs and benchmarks write and `nni-enas compare`
 * reads. A run directory holds:
 *
 *   run.json      {format, name, tuner, mode, space, seed, optimize, started, meta}
 *   trials.jsonl  one TrialRecord per line, in finishing order
 *
 * trials.jsonl is append-only and fsynced line by line, so a crash loses at most the line being
 * written; readers skip such a torn last line and say so.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './files.js';
import { compileChecker, ValidationError } from './validate.js';

export const RUN_FORMAT = 'nni-enas-run/1';
export const RUN_FILE = 'run.json';
export const TRIALS_FILE = 'trials.jsonl';

export type Optimize = 'maximize' | 'minimize';

/** How trials were evaluated: shared supernet weights, trained from scratch, looked up in a benchmark table, or anything else. */
export type RunMode = 'shared' | 'scratch' | 'table' | (string & {});

export interface RunInfo {
  format: typeof RUN_FORMAT;
  /** Human-readable name of this run, e.g. "enas-nb201-seed3". */
  name: string;
  /** Search strategy, e.g. "enas", "random", "TPE"; compare's default label. */
  tuner: string;
  mode: RunMode;
  /** Space kind ("macro", "micro", "rnn", "nb201", …), or null when not one of ours. */
  space: string | null;
  seed: number | null;
  optimize: Optimize;
  /** ISO 8601 time the run started; TrialRecord.seconds count from here. */
  started: string;
  /** Anything else worth keeping (hyperparameters, host, versions). */
  meta: Record<string, unknown>;
}

/** A scalar metric value, as NNI's web UI can show it (object values break its table). */
export type Scalar = number | string | boolean;

export interface TrialRecord {
  /** 0-based position in finishing order. */
  index: number;
  /** Seconds from RunInfo.started until the metric was known, or null when not measured. */
  seconds: number | null;
  /** NNI parameter id (or our own proposal counter), or null. */
  parameter_id: number | string | null;
  /** The NNI parameter dict the trial ran with. */
  parameters: Record<string, unknown>;
  /** The default metric; null when the trial finished without a usable one (failed, diverged). */
  metric: number | null;
  /** Other scalar metrics of the final result, e.g. {"test": 91.2}. */
  extra: Record<string, Scalar>;
}

export interface RunData {
  dir: string;
  info: RunInfo;
  trials: TrialRecord[];
  /** Problems that did not stop the reading: torn last line, skipped bad lines. */
  warnings: string[];
}

const ISO_TIME = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$';

const checkRunInfo = compileChecker<RunInfo>(
  {
    type: 'object',
    properties: {
      format: { const: RUN_FORMAT },
      name: { type: 'string', minLength: 1 },
      tuner: { type: 'string', minLength: 1 },
      mode: { type: 'string', minLength: 1 },
      space: { type: ['string', 'null'] },
      seed: { type: ['integer', 'null'] },
      optimize: { enum: ['maximize', 'minimize'] },
      started: { type: 'string', pattern: ISO_TIME },
      meta: { type: 'object' },
    },
    required: ['format', 'name', 'tuner', 'mode', 'space', 'seed', 'optimize', 'started', 'meta'],
    additionalProperties: false,
  },
  RUN_FILE,
);

const checkTrial = compileChecker<TrialRecord>(
  {
    type: 'object',
    properties: {
      index: { type: 'integer', minimum: 0 },
      seconds: { type: ['number', 'null'], minimum: 0 },
      parameter_id: { type: ['integer', 'string', 'null'] },
      parameters: { type: 'object' },
      metric: { type: ['number', 'null'] },
      extra: { type: 'object', additionalProperties: { type: ['number', 'string', 'boolean'] } },
    },
    required: ['index', 'seconds', 'parameter_id', 'parameters', 'metric', 'extra'],
    additionalProperties: false,
  },
  'trial record',
);

/** Checks run.json content (e.g. before a writer commits to it). */
export function parseRunInfo(data: unknown): RunInfo {
  const info = checkRunInfo(data);
  if (Number.isNaN(Date.parse(info.started)))
    throw new ValidationError(RUN_FILE, [`key "started": ${JSON.stringify(info.started)} is not a valid time`]);
  return info;
}

/**
 * Splits an NNI final result (a number, or a dict whose `default` is the metric) into the
 * default metric and the scalar extras, the way NNI's web UI reads it (NNI-PROTOCOL (d)).
 * Non-scalar extras are dropped; a dict without a numeric `default` gives metric null.
 */
export function splitFinalResult(value: unknown): { metric: number | null; extra: Record<string, Scalar> } {
  if (typeof value === 'number') return { metric: Number.isFinite(value) ? value : null, extra: {} };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { metric: null, extra: {} };
  const extra: Record<string, Scalar> = {};
  for (const [key, v] of Object.entries(value))
    if (key !== 'default' && (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))) extra[key] = v;
  const metric = (value as Record<string, unknown>).default;
  return { metric: typeof metric === 'number' && Number.isFinite(metric) ? metric : null, extra };
}

/** What a writer's caller supplies per trial; index is assigned, seconds default to the time since `started`. */
export interface TrialInput {
  seconds?: number | null;
  parameter_id?: number | string | null;
  parameters: Record<string, unknown>;
  metric: number | null;
  extra?: Record<string, Scalar>;
}

/** Appends trials to a run directory, one fsynced line each. */
export class RunWriter {
  private fd: number | null;
  private nextIndex: number;
  private readonly startedMs: number;

  private constructor(
    readonly dir: string,
    readonly info: RunInfo,
    fd: number,
    nextIndex: number,
  ) {
    this.fd = fd;
    this.nextIndex = nextIndex;
    this.startedMs = Date.parse(info.started);
  }

  /** Starts a new run directory; refuses one that already holds a run, so two runs never mix. */
  static create(dir: string, info: Omit<RunInfo, 'format' | 'started' | 'meta'> & { started?: string; meta?: Record<string, unknown> }): RunWriter {
    if (existsSync(join(dir, RUN_FILE))) throw new Error(`${dir} already holds a run; use RunWriter.resume to continue it`);
    const { name, tuner, mode, space, seed, optimize } = info;
    // Keys in the documented order, so run.json reads the same whoever wrote it.
    const full = parseRunInfo({ format: RUN_FORMAT, name, tuner, mode, space, seed, optimize, started: info.started ?? new Date().toISOString(), meta: info.meta ?? {} });
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, TRIALS_FILE), '');
    writeFileAtomic(join(dir, RUN_FILE), `${JSON.stringify(full, null, 2)}\n`);
    return new RunWriter(dir, full, openSync(join(dir, TRIALS_FILE), 'a'), 0);
  }

  /**
   * Continues an existing run after a restart. A torn last line (the crash case) is cut off
   * first, so the next record starts on a line of its own.
   */
  static resume(dir: string): RunWriter {
    const info = parseRunInfo(JSON.parse(readFileSync(join(dir, RUN_FILE), 'utf8')));
    const path = join(dir, TRIALS_FILE);
    const bytes = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
    const { trials, torn } = parseTrialLines(bytes.toString('utf8'));
    const fd = openSync(path, 'a');
    if (torn) ftruncateSync(fd, bytes.lastIndexOf(0x0a) + 1);
    // A whole record that only lacks its newline (written by hand) is kept.
    else if (bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) writeSync(fd, '\n');
    fsyncSync(fd);
    return new RunWriter(dir, info, fd, trials.reduce((next, t) => Math.max(next, t.index + 1), 0));
  }

  /** Index the next trial gets: the number written so far, resumed ones included. */
  get count(): number {
    return this.nextIndex;
  }

  /** Appends one finished trial and makes it durable before returning it. Non-finite numbers are refused (JSON cannot hold them). */
  append(trial: TrialInput): TrialRecord {
    if (this.fd === null) throw new Error(`run writer for ${this.dir} is closed`);
    const record = checkTrial({
      index: this.nextIndex,
      seconds: trial.seconds === undefined ? Math.max(0, (Date.now() - this.startedMs) / 1000) : trial.seconds,
      parameter_id: trial.parameter_id ?? null,
      parameters: trial.parameters,
      metric: trial.metric,
      extra: trial.extra ?? {},
    });
    // One write per line: after a crash the file ends in whole lines plus at most one torn one.
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    let offset = 0;
    while (offset < line.length) offset += writeSync(this.fd, line, offset, line.length - offset);
    fsyncSync(this.fd);
    this.nextIndex++;
    return record;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Parses trials.jsonl text: bad lines are skipped with a warning; a torn final line is reported as such. */
function parseTrialLines(text: string): { trials: TrialRecord[]; warnings: string[]; torn: boolean } {
  const trials: TrialRecord[] = [];
  const warnings: string[] = [];
  const lines = text.split('\n');
  // Text ending in "\n" leaves one empty piece; anything else in the last piece is unterminated.
  const last = lines.pop()!;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      trials.push(checkTrial(JSON.parse(line)));
    } catch (error) {
      warnings.push(`${TRIALS_FILE} line ${i + 1} skipped: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  let torn = false;
  if (last.trim() !== '') {
    try {
      trials.push(checkTrial(JSON.parse(last)));
    } catch {
      torn = true;
      warnings.push(`${TRIALS_FILE} line ${lines.length + 1} is torn (the writer stopped mid-line) and was ignored`);
    }
  }
  return { trials, warnings, torn };
}

/** Reads and validates a run directory. Throws when run.json is missing or invalid. */
export function readRun(dir: string): RunData {
  const info = parseRunInfo(JSON.parse(readFileSync(join(dir, RUN_FILE), 'utf8')));
  const path = join(dir, TRIALS_FILE);
  if (!existsSync(path)) return { dir, info, trials: [], warnings: [`no ${TRIALS_FILE} yet`] };
  const { trials, warnings } = parseTrialLines(readFileSync(path, 'utf8'));
  return { dir, info, trials, warnings };
}
