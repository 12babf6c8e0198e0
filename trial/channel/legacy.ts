/*
 * NNI's legacy trial protocol, used by the Python trial runner of reuse-mode training services
 * when NNI_TRIAL_COMMAND_CHANNEL is unset (NNI-PROTOCOL.md b.5): the parameter arrives in
 * $NNI_SYS_DIR/parameter.cfg; metrics go to stdout as `NNISDK_MEb'<record>'` lines, or (old local
 * service) are appended to $NNI_SYS_DIR/.nni/metrics as `ME` + 6-digit length + record + newline.
 */
import { appendFileSync, mkdirSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ParameterRecord, TrialTransport } from './types.js';
import { checkParameterRecord } from './record.js';

/** The Python SDK polls parameter.cfg every 3 s; we poll faster, the file is written once. */
const PARAMETER_POLL_MS = 200;

export class LegacyTransport implements TrialTransport {
  readonly name: string;

  constructor(
    private readonly sysDir: string,
    private readonly metricsTo: 'stdout' | 'file',
    private readonly write: (text: string) => void = (text) => process.stdout.write(text),
  ) {
    this.name = `legacy-${metricsTo}`;
  }

  async requestParameter(): Promise<ParameterRecord> {
    const path = join(this.sysDir, 'parameter.cfg');
    for (;;) {
      let text = '';
      try {
        text = readFileSync(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      if (text.trim()) return checkParameterRecord(JSON.parse(text));
      await sleep(PARAMETER_POLL_MS);
    }
  }

  async sendMetric(record: string): Promise<void> {
    if (this.metricsTo === 'stdout') {
      this.write(`NNISDK_MEb'${record}'\n`);
      return;
    }
    const dir = join(this.sysDir, '.nni');
    mkdirSync(dir, { recursive: true });
    const data = Buffer.from(record + '\n', 'utf8');
    const header = Buffer.from(`ME${String(data.length).padStart(6, '0')}`, 'ascii');
    const path = join(dir, 'metrics');
    appendFileSync(path, Buffer.concat([header, data]));
    const now = new Date();
    utimesSync(path, now, now); // the old service watched the file's mtime
  }
}
