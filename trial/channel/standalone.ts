/*
 * No NNI at all: the parameters come from a flag or a file, metrics are printed as JSON lines.
 * For debugging one architecture by hand.
 */
import type { ParameterRecord, TrialTransport } from './types.js';

export class StandaloneTransport implements TrialTransport {
  readonly name = 'standalone';

  constructor(
    private readonly parameters: unknown,
    private readonly write: (text: string) => void = (text) => process.stdout.write(text),
  ) {}

  async requestParameter(): Promise<ParameterRecord> {
    return { parameter_id: 0, parameter_source: 'standalone', parameters: this.parameters, parameter_index: 0 };
  }

  async sendMetric(record: string): Promise<void> {
    this.write(`metric ${record}\n`);
  }
}
