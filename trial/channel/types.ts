/*
 * The one small interface between a trial and whoever runs it (NNI's trial keeper over HTTP,
 * NNI's legacy runners over files/stdout, or nobody in standalone mode).
 */

/** The `TR` content a tuner sent, as the trial receives it (NNI-PROTOCOL.md b.3). */
export interface ParameterRecord {
  parameter_id: number | null;
  parameter_source: string;
  parameters: unknown;
  parameter_index: number;
}

/**
 * A metric value: a number, or a dict whose `default` is the number NNI's UI sorts by. Extra keys
 * must be scalars: an object-valued key blanks NNI's trial table (NNI-PROTOCOL.md d).
 */
export type MetricValue = number | ({ default: number } & Record<string, number | string | boolean>);

export type MetricType = 'PERIODICAL' | 'FINAL';

/** How metric records travel; the parameter side and the record format are shared. */
export interface TrialTransport {
  readonly name: string;
  /** Asks for and waits for the trial's one parameter record. */
  requestParameter(): Promise<ParameterRecord>;
  /** Delivers one metric record string (NNI-PROTOCOL.md b.4). */
  sendMetric(record: string): Promise<void>;
}
