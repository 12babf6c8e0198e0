/*
 * Chooses the trial channel from the environment, in one place, and enforces NNI's rules on top
 * of any transport: exactly one parameter request, every metric carries the received
 * parameter_id and NNI_TRIAL_JOB_ID, PERIODICAL sequences count up, exactly one FINAL.
 */
import { HttpTransport } from './http.js';
import { LegacyTransport } from './legacy.js';
import { StandaloneTransport } from './standalone.js';
import { checkMetricValue, metricRecord } from './record.js';
import type { MetricValue, ParameterRecord, TrialTransport } from './types.js';

export type { MetricValue, ParameterRecord } from './types.js';

export class TrialChannel {
  private record: ParameterRecord | undefined;
  private requested = false;
  private sequence = 0;
  private finalSent = false;

  constructor(
    readonly transport: TrialTransport,
    readonly trialJobId: string,
  ) {}

  /** The trial's one parameter record; a second call is a programming error. */
  async receiveParameter(): Promise<ParameterRecord> {
    if (this.requested) throw new Error('a trial requests its parameter exactly once (NNI-PROTOCOL.md b.3)');
    this.requested = true;
    this.record = await this.transport.requestParameter();
    return this.record;
  }

  private async send(type: 'PERIODICAL' | 'FINAL', sequence: number, value: MetricValue): Promise<void> {
    if (!this.record) throw new Error('report metrics only after receiving the parameter');
    if (this.finalSent) throw new Error('the FINAL metric was already reported');
    checkMetricValue(value);
    await this.transport.sendMetric(metricRecord(this.record.parameter_id, this.trialJobId, type, sequence, value));
  }

  async reportIntermediate(value: MetricValue): Promise<void> {
    await this.send('PERIODICAL', this.sequence, value);
    this.sequence++;
  }

  async reportFinal(value: MetricValue): Promise<void> {
    await this.send('FINAL', 0, value);
    this.finalSent = true;
  }
}

/**
 * The channel NNI set up for this process (NNI-PROTOCOL.md b.1, b.5), or standalone when no
 * NNI variable is present and `standaloneParameters` is given.
 */
export function channelFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  standaloneParameters?: unknown,
): TrialChannel {
  const trialJobId = env.NNI_TRIAL_JOB_ID ?? 'standalone';
  let transport: TrialTransport;
  if (env.NNI_TRIAL_COMMAND_CHANNEL) {
    transport = new HttpTransport(env.NNI_TRIAL_COMMAND_CHANNEL);
  } else if (env.NNI_PLATFORM) {
    if (!env.NNI_SYS_DIR) throw new Error('NNI_PLATFORM is set but NNI_SYS_DIR is not: cannot find parameter.cfg');
    const legacyLocal = env.NNI_PLATFORM === 'local' && env.REUSE_MODE !== 'true';
    transport = new LegacyTransport(env.NNI_SYS_DIR, legacyLocal ? 'file' : 'stdout');
  } else if (standaloneParameters !== undefined) {
    transport = new StandaloneTransport(standaloneParameters);
  } else {
    throw new Error('not running under NNI (no NNI_TRIAL_COMMAND_CHANNEL / NNI_PLATFORM): pass --params or --params-file');
  }
  return new TrialChannel(transport, trialJobId);
}
