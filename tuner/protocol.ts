/*
 * NNI's tuner command protocol (NNI-PROTOCOL.md a.2–a.6) as typed values: every command the
 * manager sends is checked against a JSON schema and decoded (including NNI's double encoding
 * of `content` and of metric values) into an IncomingCommand; the commands the tuner sends are
 * built here with NNI's exact key order. tuner/tuner.ts consumes these; tuner/transport.ts
 * carries the frames. Control frames (`_nop_`, `_bye_`) belong to the transport, not here.
 */
import { compileChecker, ValidationError } from '../common/validate.js';

/** One frame on the wire: `content` is a string (usually JSON inside), absent for TE. */
export interface Command {
  type: string;
  content?: string;
}

export type TrialEvent = 'SUCCEEDED' | 'FAILED' | 'USER_CANCELED' | 'EARLY_STOPPED' | 'SYS_CANCELED';

/** A TR content as NNI stores and returns it (EN hyper_params, AD items, a trial's parameter). */
export interface TrialParameters {
  /** null for web-UI "add trial" (parameter_source "customized"). */
  parameter_id: number | null;
  parameter_source: string;
  parameters: unknown;
  parameter_index?: number;
}

/** A trial's metric record, forwarded verbatim by the manager in ME (NNI-PROTOCOL b.4). */
export interface MetricRecord {
  parameter_id?: number | null;
  trial_job_id: string;
  type: 'FINAL' | 'PERIODICAL' | 'REQUEST_PARAMETER';
  sequence?: number;
  /** The metric, JSON-encoded once more by the trial SDK; see `metricValue`. */
  value?: string;
}

/** An FD entry: resume sends the value as a JSON string, import-data as raw JSON. */
export interface ImportedTrial {
  parameter: unknown;
  value: unknown;
  trialJobId?: string;
}

export type IncomingCommand =
  | { type: 'IN'; searchSpace: unknown }
  | { type: 'SS'; searchSpace: unknown }
  | { type: 'GE'; count: number }
  | { type: 'ME'; metric: MetricRecord }
  | { type: 'EN'; trialJobId: string; event: TrialEvent; hyperParams: TrialParameters }
  | { type: 'FD'; trials: ImportedTrial[] }
  | { type: 'AD'; trials: TrialParameters[] }
  | { type: 'TE' };

const checkFrame = compileChecker<{ type: IncomingCommand['type']; content?: string }>(
  {
    type: 'object',
    properties: {
      type: { enum: ['IN', 'SS', 'GE', 'ME', 'EN', 'FD', 'AD', 'TE'] },
      content: { type: 'string' },
    },
    required: ['type'],
    // Content is required for every command but TE, whose frame is just {"type":"TE"}.
    if: { type: 'object', properties: { type: { not: { const: 'TE' } } } },
    then: { type: 'object', properties: { content: { type: 'string' } }, required: ['content'] },
  },
  'NNI command',
);

const TRIAL_PARAMETERS_SCHEMA = {
  type: 'object',
  properties: {
    parameter_id: { type: ['integer', 'null'], minimum: 0 },
    parameter_source: { type: 'string' },
    parameters: {},
    parameter_index: { type: 'integer', minimum: 0 },
  },
  required: ['parameter_id', 'parameter_source', 'parameters'],
};

const checkSearchSpace = compileChecker<object>({ type: 'object' }, 'search space');
const checkCount = compileChecker<number>({ type: 'integer', minimum: 0 }, 'GE content');
const checkMetric = compileChecker<MetricRecord>(
  {
    type: 'object',
    properties: {
      parameter_id: { type: ['integer', 'null'], minimum: 0 },
      trial_job_id: { type: 'string' },
      type: { enum: ['FINAL', 'PERIODICAL', 'REQUEST_PARAMETER'] },
      sequence: { type: 'integer', minimum: 0 },
      value: { type: 'string' },
    },
    required: ['trial_job_id', 'type'],
    // REQUEST_PARAMETER (legacy multi-phase) records carry no metric.
    if: { type: 'object', properties: { type: { enum: ['FINAL', 'PERIODICAL'] } } },
    then: {
      type: 'object',
      properties: { parameter_id: { type: ['integer', 'null'] }, value: { type: 'string' } },
      required: ['parameter_id', 'value'],
    },
  },
  'ME content',
);
const checkTrialEnd = compileChecker<{ trial_job_id: string; event: TrialEvent; hyper_params: string }>(
  {
    type: 'object',
    properties: {
      trial_job_id: { type: 'string' },
      event: { enum: ['SUCCEEDED', 'FAILED', 'USER_CANCELED', 'EARLY_STOPPED', 'SYS_CANCELED'] },
      hyper_params: { type: 'string' },
    },
    required: ['trial_job_id', 'event', 'hyper_params'],
  },
  'EN content',
);
const checkHyperParams = compileChecker<TrialParameters>(TRIAL_PARAMETERS_SCHEMA, 'EN hyper_params');
const checkImported = compileChecker<ImportedTrial[]>(
  {
    type: 'array',
    items: {
      type: 'object',
      properties: { parameter: {}, value: {}, trialJobId: { type: 'string' } },
      required: ['parameter', 'value'],
    },
  },
  'FD content',
);
const checkRecovered = compileChecker<TrialParameters[]>({ type: 'array', items: TRIAL_PARAMETERS_SCHEMA }, 'AD content');

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(what, [`not JSON (${(error as Error).message})`]);
  }
}

/**
 * Decodes one frame (already JSON-parsed by the transport) into a command. Throws a
 * ValidationError naming what is wrong: unknown type, missing content, content of the wrong shape.
 */
export function decodeCommand(frame: unknown): IncomingCommand {
  const { type, content } = checkFrame(frame);
  if (type === 'TE') return { type };
  const data = parseJson(content!, `${type} content`);
  switch (type) {
    case 'IN':
    case 'SS':
      return { type, searchSpace: checkSearchSpace(data) };
    case 'GE':
      return { type, count: checkCount(data) };
    case 'ME':
      return { type, metric: checkMetric(data) };
    case 'EN': {
      const end = checkTrialEnd(data);
      const hyperParams = checkHyperParams(parseJson(end.hyper_params, 'EN hyper_params'));
      return { type, trialJobId: end.trial_job_id, event: end.event, hyperParams };
    }
    case 'FD':
      return { type, trials: checkImported(data) };
    case 'AD':
      return { type, trials: checkRecovered(data) };
  }
}

/** A metric record's value: a JSON string holding a number or a dict (NNI-PROTOCOL b.4). */
export function metricValue(record: MetricRecord): unknown {
  return parseJson(record.value ?? '', `metric value of trial ${record.trial_job_id}`);
}

/** An FD value: resume sends the JSON string NNI stored, import-data the user's raw JSON. */
export function importedValue(trial: ImportedTrial): unknown {
  return typeof trial.value === 'string' ? parseJson(trial.value, 'imported value') : trial.value;
}

/** ID: the answer to IN; the manager then sends GE (and FD/AD on resume). */
export function initializedCommand(): Command {
  return { type: 'ID', content: '' };
}

/** TR with NNI's key order, as the Python dispatcher's `_pack_parameter` writes it. */
export function newTrialCommand(parameterId: number, parameters: Record<string, unknown>): Command {
  const content = { parameter_id: parameterId, parameter_source: 'algorithm', parameters, parameter_index: 0 };
  return { type: 'TR', content: JSON.stringify(content) };
}

/** ER: the manager logs the text and puts the experiment in ERROR (NNI-PROTOCOL a.5). */
export function errorCommand(message: string): Command {
  return { type: 'ER', content: message };
}
