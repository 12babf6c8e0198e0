/*
 * NNI 3.0's v3 HTTP trial channel, used in local mode (NNI-PROTOCOL.md b.3–b.4): PUT commands
 * to NNI_TRIAL_COMMAND_CHANNEL, long-poll GET for the parameter (408 = poll again, 410 = gone).
 *
 * Each request gets its own connection (`Connection: close`): a trial blocks its event loop for
 * whole training steps, so a kept-alive connection can be closed by the manager's 5 s keep-alive
 * timeout just as the next metric goes out ("fetch failed (other side closed)", seen in
 * test/e2e-nni.test.ts on a loaded machine). A trial sends a handful of requests; local
 * connections cost nothing next to that.
 */
import type { ParameterRecord, TrialTransport } from './types.js';
import { checkParameterRecord } from './record.js';

export class HttpTransport implements TrialTransport {
  readonly name = 'http';

  constructor(private readonly url: string) {}

  private async put(body: object): Promise<void> {
    const response = await fetch(this.url, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', Connection: 'close' },
      body: JSON.stringify(body),
    });
    await response.arrayBuffer();
    if (response.status === 410) throw new Error(`NNI closed the trial channel ${this.url} (410)`);
    if (!response.ok) throw new Error(`PUT ${this.url} failed: ${response.status} ${response.statusText}`);
  }

  async requestParameter(): Promise<ParameterRecord> {
    await this.put({ type: 'request_parameter' });
    for (;;) {
      const response = await fetch(this.url, { headers: { Connection: 'close' } });
      const text = await response.text();
      if (response.status === 408) continue; // no command within the manager's 1 s poll window
      if (response.status === 410) throw new Error(`NNI closed the trial channel ${this.url} before sending a parameter`);
      if (!response.ok) throw new Error(`GET ${this.url} failed: ${response.status} ${text}`);
      const command = JSON.parse(text) as { type?: string; parameter?: unknown };
      if (command.type !== 'parameter' || typeof command.parameter !== 'string')
        throw new Error(`unexpected command from NNI on ${this.url}: ${text}`);
      return checkParameterRecord(JSON.parse(command.parameter));
    }
  }

  sendMetric(record: string): Promise<void> {
    return this.put({ type: 'metric', metric: record });
  }
}
