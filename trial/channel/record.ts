/*
 * The records both directions share: the parameter record a trial receives and the metric
 * record it sends (NNI-PROTOCOL.md b.3–b.4).
 */
import { compileChecker } from '../../common/validate.js';
import type { MetricType, MetricValue, ParameterRecord } from './types.js';

export const checkParameterRecord = compileChecker<ParameterRecord>(
  {
    type: 'object',
    properties: {
      parameter_id: { type: ['integer', 'null'] },
      parameter_source: { type: 'string' },
      parameters: {},
      parameter_index: { type: 'integer' },
      placement_constraint: {},
    },
    required: ['parameter_id', 'parameter_source', 'parameters', 'parameter_index'],
    additionalProperties: false,
  },
  'parameter record from NNI',
);

/** Checks a metric value: a finite number, or a dict with a numeric `default` and scalar extras. */
export function checkMetricValue(value: MetricValue): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`metric value must be finite, got ${value}`);
    return;
  }
  if (typeof value.default !== 'number' || !Number.isFinite(value.default))
    throw new Error(`metric dict needs a finite numeric "default", got ${JSON.stringify(value.default)}`);
  for (const [key, v] of Object.entries(value))
    if (typeof v === 'object' || v === undefined)
      throw new Error(`metric key "${key}" must be a scalar (an object blanks NNI's trial table)`);
}

/** The metric record string, keys in the order the Python SDK writes them. */
export function metricRecord(
  parameterId: number | null,
  trialJobId: string,
  type: MetricType,
  sequence: number,
  value: MetricValue,
): string {
  return JSON.stringify({
    parameter_id: parameterId,
    trial_job_id: trialJobId,
    type,
    sequence,
    value: JSON.stringify(value),
  });
}
