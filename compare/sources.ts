/*
 * Everything `nni-enas compare` can read, turned into trials of our results format
 * (common/results.ts): our run directories, `nnictl experiment export --type json` files, a
 * running NNI manager's REST API, and a saved GET /api/v1/nni/trial-jobs response.
 *
 * A source that cannot be read throws; one that is only partly usable (trials without a final
 * metric, bad lines, unpaired parameters) loads with notes saying what was left out and why.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { readRun, RUN_FILE, splitFinalResult, type Optimize, type TrialRecord } from '../common/results.js';
import { compileChecker } from '../common/validate.js';

export type SourceKind = 'run' | 'nni-export' | 'nni-rest' | 'nni-rest-file';

/** A trial that has a default metric: the only kind curves are built from. */
export type ScoredTrial = TrialRecord & { metric: number };

/** One experiment, whatever it was read from. */
export interface LoadedRun {
  /** The source as the user gave it (for a run found inside a directory, that run's path). */
  source: string;
  kind: SourceKind;
  label: string;
  name: string;
  tuner: string | null;
  /** Direction the source declares (run.json, the NNI tuner's optimize_mode), or null if it does not say. */
  optimize: Optimize | null;
  /** Space kind from run.json, when known. */
  space: string | null;
  /** Scored trials in finishing order. */
  trials: ScoredTrial[];
  /** True when every trial has its time. */
  timed: boolean;
  notes: string[];
}

export interface SourceFailure {
  source: string;
  error: string;
}

export interface SourceRequest {
  source: string;
  /** Group name; by default the run's tuner or experiment name, or the file name. */
  label?: string;
}

export interface LoadOptions {
  /** Per HTTP request. */
  timeoutMs: number;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Decodes an NNI metric value: NNI stores the reported value as a JSON string, and its REST
 * view encodes that string once more (NNI-PROTOCOL b.4), so strings are parsed until a
 * non-string appears. Throws on text that is not JSON (e.g. Python's bare NaN).
 */
export function decodeNniValue(raw: unknown): unknown {
  let value = raw;
  for (let depth = 0; depth < 3 && typeof value === 'string'; depth++) value = JSON.parse(value);
  return value;
}

const fileLabel = (path: string): string => basename(path, extname(path));

function withScores(source: Omit<LoadedRun, 'trials' | 'timed'>, trials: TrialRecord[]): LoadedRun {
  const scored = trials.filter((t): t is ScoredTrial => t.metric !== null);
  if (scored.length < trials.length)
    source.notes.push(`${trials.length - scored.length} trial(s) without a usable default metric left out`);
  if (scored.length === 0) throw new Error(`no trial with a final metric${source.notes.length ? ` (${source.notes.join('; ')})` : ''}`);
  return { ...source, trials: scored, timed: scored.every((t) => t.seconds !== null) };
}

/** A run directory written by common/results.ts. */
export function runFromDirectory(dir: string, label?: string): LoadedRun {
  const run = readRun(dir);
  return withScores(
    {
      source: dir,
      kind: 'run',
      label: label ?? run.info.tuner,
      name: run.info.name,
      tuner: run.info.tuner,
      optimize: run.info.optimize,
      space: run.info.space,
      notes: [...run.warnings],
    },
    run.trials,
  );
}

interface ExportItem {
  parameter: Record<string, unknown>;
  value: unknown;
  trialJobId?: string;
}

const checkExportItem = compileChecker<ExportItem>(
  {
    type: 'object',
    properties: {
      parameter: { type: 'object' },
      value: { type: ['string', 'number', 'object'] },
      trialJobId: { type: 'string' },
    },
    required: ['parameter', 'value'],
  },
  'export entry',
);

/** Splits an NNI final value into metric and extras; an undecodable value counts as no metric, with a note. */
function finalOf(raw: unknown, trial: string, notes: string[]): ReturnType<typeof splitFinalResult> {
  try {
    return splitFinalResult(decodeNniValue(raw));
  } catch (error) {
    notes.push(`trial ${trial}: final value ${JSON.stringify(raw).slice(0, 60)} is not JSON (${messageOf(error)})`);
    return { metric: null, extra: {} };
  }
}

/** `nnictl experiment export --type json`: a list of {parameter, value (JSON string), trialJobId}, no times. */
export function runFromExport(data: unknown, source: string, label?: string): LoadedRun {
  if (!Array.isArray(data)) throw new Error('not an nnictl export: expected a JSON list');
  const notes: string[] = [
    'export files carry no times',
    // NNI-PROTOCOL b.3: with trialConcurrency > 1 the manager can hand a trial another trial's parameters.
    'nnictl export pairs each metric with the parameters NNI recorded for the trial, which can be another trial\'s when trialConcurrency > 1; the REST view pairs by parameter_id',
  ];
  const trials: TrialRecord[] = [];
  data.forEach((entry, i) => {
    let item: ExportItem;
    try {
      item = checkExportItem(entry);
    } catch (error) {
      notes.push(`entry ${i} skipped: ${messageOf(error)}`);
      return;
    }
    const { metric, extra } = finalOf(item.value, item.trialJobId ?? `#${i}`, notes);
    trials.push({ index: trials.length, seconds: null, parameter_id: null, parameters: item.parameter, metric, extra });
  });
  return withScores({ source, kind: 'nni-export', label: label ?? fileLabel(source), name: fileLabel(source), tuner: null, optimize: null, space: null, notes }, trials);
}

interface MetricRecord {
  timestamp?: number;
  trialJobId: string;
  parameterId?: string | number | null;
  type?: string;
  data: unknown;
}

interface TrialJob {
  trialJobId: string;
  status: string;
  sequenceId?: number;
  startTime?: number;
  endTime?: number;
  hyperParameters?: string[];
  finalMetricData?: MetricRecord[];
}

const metricRecordSchema = {
  type: 'object',
  properties: {
    timestamp: { type: 'number' },
    trialJobId: { type: 'string' },
    parameterId: { type: ['string', 'number', 'null'] },
    type: { type: 'string' },
    data: {},
  },
  required: ['trialJobId', 'data'],
};

const checkTrialJob = compileChecker<TrialJob>(
  {
    type: 'object',
    properties: {
      trialJobId: { type: 'string' },
      status: { type: 'string' },
      sequenceId: { type: 'integer' },
      startTime: { type: 'number' },
      endTime: { type: 'number' },
      hyperParameters: { type: 'array', items: { type: 'string' } },
      finalMetricData: { type: 'array', items: metricRecordSchema },
    },
    required: ['trialJobId', 'status'],
  },
  'trial job',
);

const checkMetricRecord = compileChecker<MetricRecord>(metricRecordSchema, 'metric record');

/** The `TR` content NNI keeps per trial (NNI-PROTOCOL a.3). */
interface HyperParameterRecord {
  parameter_id: number | string | null;
  parameters: Record<string, unknown>;
}

const checkHyperParameter = compileChecker<HyperParameterRecord>(
  {
    type: 'object',
    properties: { parameter_id: { type: ['integer', 'string', 'null'] }, parameters: { type: 'object' } },
    required: ['parameters'],
  },
  'hyperParameters entry',
);

/** What the REST API adds beside the trial jobs; absent when reading a saved file. */
export interface RestExtras {
  /** GET /api/v1/nni/metric-data, for trials whose finalMetricData is missing. */
  metricData?: unknown;
  /** GET /api/v1/nni/experiment. */
  profile?: unknown;
}

const countBy = (items: readonly string[]): string =>
  Object.entries(items.reduce<Record<string, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {}))
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');

/** Experiment name, tuner and direction from an NNI experiment profile, when it has them. */
function describeProfile(profile: unknown): { name?: string; tuner?: string; optimize?: Optimize } {
  if (typeof profile !== 'object' || profile === null) return {};
  const { params, id } = profile as { params?: Record<string, unknown>; id?: unknown };
  const algorithm = (params?.tuner ?? params?.advisor) as { name?: unknown; className?: unknown; classArgs?: { optimize_mode?: unknown } } | undefined;
  const tuner = [algorithm?.name, algorithm?.className].find((v): v is string => typeof v === 'string' && v !== '');
  const name = [params?.experimentName, id].find((v): v is string => typeof v === 'string' && v !== '');
  const mode = algorithm?.classArgs?.optimize_mode;
  return { name, tuner, optimize: mode === 'maximize' || mode === 'minimize' ? mode : undefined };
}

/**
 * GET /api/v1/nni/trial-jobs (live or saved). Metrics are paired with parameters through the
 * metric's parameterId, not the trial's recorded hyperParameters: NNI v3 hands queued parameters
 * to whichever trial asks first (NNI-PROTOCOL b.3). Times count from the first trial's start.
 */
export function runFromTrialJobs(data: unknown, source: string, kind: 'nni-rest' | 'nni-rest-file', extras: RestExtras = {}, label?: string): LoadedRun {
  if (!Array.isArray(data)) throw new Error('not an NNI trial-jobs response: expected a JSON list');
  const notes: string[] = [];
  const jobs: TrialJob[] = [];
  data.forEach((entry, i) => {
    try {
      jobs.push(checkTrialJob(entry));
    } catch (error) {
      notes.push(`trial job ${i} skipped: ${messageOf(error)}`);
    }
  });

  const ownParameters = new Map<string, HyperParameterRecord[]>();
  const byParameterId = new Map<string, HyperParameterRecord[]>();
  for (const job of jobs) {
    const records: HyperParameterRecord[] = [];
    for (const text of job.hyperParameters ?? []) {
      try {
        const record = checkHyperParameter(JSON.parse(text));
        records.push(record);
        if (record.parameter_id !== null && record.parameter_id !== undefined) {
          const key = String(record.parameter_id);
          byParameterId.set(key, [...(byParameterId.get(key) ?? []), record]);
        }
      } catch (error) {
        notes.push(`trial ${job.trialJobId}: unreadable hyperParameters entry (${messageOf(error)})`);
      }
    }
    ownParameters.set(job.trialJobId, records);
  }

  // Fallback FINAL records from /metric-data; NNI keeps the first FINAL of a trial, so do we.
  const fallbackFinal = new Map<string, MetricRecord>();
  if (Array.isArray(extras.metricData))
    for (const entry of extras.metricData) {
      try {
        const record = checkMetricRecord(entry);
        if (record.type === 'FINAL' && !fallbackFinal.has(record.trialJobId)) fallbackFinal.set(record.trialJobId, record);
      } catch (error) {
        notes.push(`metric-data record skipped: ${messageOf(error)}`);
      }
    }

  const starts = jobs.map((j) => j.startTime).filter((t): t is number => t !== undefined);
  const origin = starts.length ? Math.min(...starts) : undefined;
  const withoutMetric: string[] = [];
  const notSucceededWithMetric: string[] = [];
  let repaired = 0;
  let ambiguous = 0;
  const scored: { record: TrialRecord; sequence: number | undefined; position: number }[] = [];
  jobs.forEach((job, position) => {
    const final = job.finalMetricData?.find((m) => m.type === undefined || m.type === 'FINAL') ?? fallbackFinal.get(job.trialJobId);
    if (!final) {
      withoutMetric.push(job.status);
      return;
    }
    if (job.status !== 'SUCCEEDED') notSucceededWithMetric.push(job.status);
    const own = ownParameters.get(job.trialJobId) ?? [];
    const pid = final.parameterId === undefined || final.parameterId === null || final.parameterId === 'null' ? null : String(final.parameterId);
    const ownMatch = pid === null ? undefined : own.find((r) => String(r.parameter_id) === pid);
    const elsewhere = pid === null || ownMatch ? [] : (byParameterId.get(pid) ?? []);
    let parameters: Record<string, unknown> | undefined;
    if (ownMatch) parameters = ownMatch.parameters;
    else if (elsewhere.length === 1) {
      parameters = elsewhere[0]!.parameters;
      repaired++;
    } else {
      parameters = own[0]?.parameters;
      if (elsewhere.length > 1) ambiguous++;
    }
    if (!parameters) notes.push(`trial ${job.trialJobId}: no parameters recorded`);
    const time = final.timestamp ?? job.endTime;
    const { metric, extra } = finalOf(final.data, job.trialJobId, notes);
    scored.push({
      record: {
        index: 0,
        seconds: origin !== undefined && time !== undefined ? Math.max(0, (time - origin) / 1000) : null,
        parameter_id: pid === null ? null : /^\d+$/.test(pid) ? Number(pid) : pid,
        parameters: parameters ?? {},
        metric,
        extra,
      },
      sequence: job.sequenceId,
      position,
    });
  });
  if (withoutMetric.length) notes.push(`${withoutMetric.length} trial(s) without a final metric left out (${countBy(withoutMetric)})`);
  if (notSucceededWithMetric.length) notes.push(`${notSucceededWithMetric.length} trial(s) with a final metric did not succeed (${countBy(notSucceededWithMetric)}); counted, as NNI's tuner received their metric`);
  if (repaired) notes.push(`${repaired} metric(s) paired with the parameters of their parameter_id, which NNI had recorded on another trial`);
  if (ambiguous) notes.push(`${ambiguous} parameter_id(s) occur on several trials (a resumed experiment?); those metrics keep their own trial's parameters`);

  // Finishing order: by the time the metric was known, else NNI's sequence, else list order.
  const key = scored.every((s) => s.record.seconds !== null)
    ? (s: (typeof scored)[number]) => s.record.seconds!
    : scored.every((s) => s.sequence !== undefined)
      ? (s: (typeof scored)[number]) => s.sequence!
      : (s: (typeof scored)[number]) => s.position;
  const trials = [...scored].sort((a, b) => key(a) - key(b) || a.position - b.position).map((s, index) => ({ ...s.record, index }));
  if (trials.some((t) => t.seconds !== null)) notes.push('times count from the first trial\'s start');

  const profile = describeProfile(extras.profile);
  return withScores(
    {
      source,
      kind,
      label: label ?? profile.tuner ?? profile.name ?? (kind === 'nni-rest' ? new URL(source).host : fileLabel(source)),
      name: profile.name ?? (kind === 'nni-rest' ? source : fileLabel(source)),
      tuner: profile.tuner ?? null,
      optimize: profile.optimize ?? null,
      space: null,
      notes,
    },
    trials,
  );
}

/** GET with a timeout; the error names the URL and the reason (refused, timed out, HTTP status). */
async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? messageOf(error));
    throw new Error(`GET ${url}: ${reason}`);
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${text.slice(0, 100)}`.trim());
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: the answer is not JSON (${text.slice(0, 60)})`);
  }
}

/** A running NNI manager, given as http://host:port (optionally with its URL prefix). */
export async function runFromRest(url: string, options: LoadOptions, label?: string): Promise<LoadedRun> {
  const base = `${url.replace(/\/+$/, '').replace(/\/api\/v1\/nni$/, '')}/api/v1/nni`;
  const jobs = await getJson(`${base}/trial-jobs`, options.timeoutMs);
  const notes: string[] = [];
  const extras: RestExtras = {};
  try {
    extras.profile = await getJson(`${base}/experiment`, options.timeoutMs);
  } catch (error) {
    notes.push(`experiment profile unavailable (${messageOf(error)})`);
  }
  if (Array.isArray(jobs) && jobs.some((j) => typeof j === 'object' && j !== null && !('finalMetricData' in j)))
    try {
      extras.metricData = await getJson(`${base}/metric-data`, options.timeoutMs);
    } catch (error) {
      notes.push(`metric data unavailable (${messageOf(error)}); trials without finalMetricData are left out`);
    }
  const run = runFromTrialJobs(jobs, url, 'nni-rest', extras, label);
  return { ...run, notes: [...notes, ...run.notes] };
}

/**
 * Splits a request into one request per experiment: a directory without run.json stands for the
 * run directories directly inside it (e.g. a benchmark's output), each loaded on its own.
 */
function expandRequest(request: SourceRequest): SourceRequest[] {
  const { source } = request;
  if (/^https?:\/\//i.test(source)) return [request];
  if (!existsSync(source)) throw new Error('no such file or directory');
  if (!statSync(source).isDirectory() || existsSync(join(source, RUN_FILE))) return [request];
  const runs = readdirSync(source, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(source, entry.name, RUN_FILE)))
    .map((entry) => join(source, entry.name))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (runs.length === 0) throw new Error(`a directory without ${RUN_FILE}, and no run directories inside`);
  return runs.map((dir) => ({ ...request, source: dir }));
}

/** A JSON file: an nnictl export or a saved trial-jobs response, told apart by their keys. */
function runFromJsonFile(path: string, label?: string): LoadedRun {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`not JSON: ${messageOf(error)}`);
  }
  if (!Array.isArray(data)) throw new Error('expected a JSON list (an nnictl export, or a saved GET /api/v1/nni/trial-jobs)');
  if (data.length === 0) throw new Error('an empty list: no trials');
  const first = data.find((d) => typeof d === 'object' && d !== null) as Record<string, unknown> | undefined;
  if (first && 'trialJobId' in first && 'status' in first) return runFromTrialJobs(data, path, 'nni-rest-file', {}, label);
  if (first && 'parameter' in first) return runFromExport(data, path, label);
  throw new Error('neither an nnictl export (entries with "parameter" and "value") nor a trial-jobs response (entries with "trialJobId" and "status")');
}

/** Reads one experiment: a URL, a run directory (or its run.json), or a JSON file. */
export async function loadSource(request: SourceRequest, options: LoadOptions): Promise<LoadedRun> {
  const { source, label } = request;
  if (/^https?:\/\//i.test(source)) return runFromRest(source, options, label);
  if (statSync(source).isDirectory()) return runFromDirectory(source, label);
  if (basename(source) === RUN_FILE) return runFromDirectory(dirname(source), label);
  return runFromJsonFile(source, label);
}

/**
 * Reads every source; one that fails is reported and the others still load. A run named twice
 * (say, inside a directory and again with --label) is read once, under its explicit label.
 */
export async function loadSources(requests: readonly SourceRequest[], options: LoadOptions): Promise<{ runs: LoadedRun[]; failures: SourceFailure[] }> {
  const failures: SourceFailure[] = [];
  const unique = new Map<string, SourceRequest>();
  for (const request of requests) {
    try {
      for (const one of expandRequest(request)) {
        const key = /^https?:\/\//i.test(one.source) ? one.source : resolve(one.source);
        const seen = unique.get(key);
        if (!seen) unique.set(key, { ...one });
        else if (one.label !== undefined) seen.label = one.label;
      }
    } catch (error) {
      failures.push({ source: request.source, error: messageOf(error) });
    }
  }
  const runs: LoadedRun[] = [];
  for (const request of unique.values())
    try {
      runs.push(await loadSource(request, options));
    } catch (error) {
      failures.push({ source: request.source, error: messageOf(error) });
    }
  return { runs, failures };
}
