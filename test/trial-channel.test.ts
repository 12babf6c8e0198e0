import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { channelFromEnvironment, TrialChannel } from '../trial/channel/index.js';
import { LegacyTransport } from '../trial/channel/legacy.js';
import { StandaloneTransport } from '../trial/channel/standalone.js';
import { FakeTrialChannelServer } from './fake-trial-channel.js';

const TR = (id: number) =>
  `{"parameter_id":${id},"parameter_source":"algorithm","parameters":{"edge_1_from_0":"none"},"parameter_index":0}`;

describe('v3 HTTP channel (local mode)', () => {
  let server: FakeTrialChannelServer;
  beforeEach(async () => {
    server = new FakeTrialChannelServer(100); // short long-poll so the 408 path is exercised
    await server.start();
  });
  afterEach(() => server.stop());

  it('requests once, survives 408 polls, and sends exact metric records', async () => {
    const channel = channelFromEnvironment({
      NNI_TRIAL_COMMAND_CHANNEL: server.urlFor('neqz8'),
      NNI_TRIAL_JOB_ID: 'neqz8',
      NNI_PLATFORM: 'local',
    });
    const received = channel.receiveParameter();
    await new Promise((resolve) => setTimeout(resolve, 350)); // at least one 408 round
    server.enqueueParameter(TR(1));
    const record = await received;
    expect(record).toEqual({
      parameter_id: 1,
      parameter_source: 'algorithm',
      parameters: { edge_1_from_0: 'none' },
      parameter_index: 0,
    });
    await channel.reportIntermediate(0.14);
    await channel.reportIntermediate({ default: 0.24, loss: 0.76 });
    await channel.reportFinal({ default: 0.34, accuracy: 0.17 });

    expect(server.log[0]).toBe('PUT neqz8 {"type":"request_parameter"}');
    expect(server.log.filter((line) => line === 'GET neqz8').length).toBeGreaterThanOrEqual(2);
    expect(server.metrics.map((m) => m.metric)).toEqual([
      '{"parameter_id":1,"trial_job_id":"neqz8","type":"PERIODICAL","sequence":0,"value":"0.14"}',
      '{"parameter_id":1,"trial_job_id":"neqz8","type":"PERIODICAL","sequence":1,"value":"{\\"default\\":0.24,\\"loss\\":0.76}"}',
      '{"parameter_id":1,"trial_job_id":"neqz8","type":"FINAL","sequence":0,"value":"{\\"default\\":0.34,\\"accuracy\\":0.17}"}',
    ]);
    // The body on the wire is {"type":"metric","metric":"<record string>"}.
    expect(server.log.at(-1)).toBe(`PUT neqz8 ${JSON.stringify({ type: 'metric', metric: server.metrics[2]!.metric })}`);
  });

  it('hands parameters to whichever trial asks first (V3asV1 FIFO)', async () => {
    const late = channelFromEnvironment({ NNI_TRIAL_COMMAND_CHANNEL: server.urlFor('aaaaa'), NNI_TRIAL_JOB_ID: 'aaaaa' });
    const early = channelFromEnvironment({ NNI_TRIAL_COMMAND_CHANNEL: server.urlFor('bbbbb'), NNI_TRIAL_JOB_ID: 'bbbbb' });
    const earlyRecord = early.receiveParameter();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lateRecord = late.receiveParameter();
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.enqueueParameter(TR(2));
    server.enqueueParameter(TR(3));
    expect((await earlyRecord).parameter_id).toBe(2);
    expect((await lateRecord).parameter_id).toBe(3);
  });

  it('fails clearly when NNI closes the channel (410)', async () => {
    server.closeTrial('gone1');
    const channel = channelFromEnvironment({ NNI_TRIAL_COMMAND_CHANNEL: server.urlFor('gone1'), NNI_TRIAL_JOB_ID: 'gone1' });
    await expect(channel.receiveParameter()).rejects.toThrow(/closed the trial channel .*410/);
  });
});

describe('legacy channels (reuse-mode training services)', () => {
  let sysDir: string;
  beforeEach(() => {
    sysDir = mkdtempSync(join(tmpdir(), 'nni-sys-'));
  });

  it('reads parameter.cfg and prints NNISDK_MEb lines on stdout', async () => {
    const lines: string[] = [];
    const channel = new TrialChannel(new LegacyTransport(sysDir, 'stdout', (t) => lines.push(t)), 'abc12');
    setTimeout(() => writeFileSync(join(sysDir, 'parameter.cfg'), TR(0)), 100); // written after the trial started
    expect((await channel.receiveParameter()).parameter_id).toBe(0);
    await channel.reportFinal(0.5);
    expect(lines).toEqual([
      `NNISDK_MEb'{"parameter_id":0,"trial_job_id":"abc12","type":"FINAL","sequence":0,"value":"0.5"}'\n`,
    ]);
    // The runner's own pattern extracts the record.
    const match = /NNISDK_MEb'(?<metrics>.*a?)'$/m.exec(lines[0]!);
    expect(JSON.parse(match!.groups!.metrics!).value).toBe('0.5');
  });

  it('appends ME + 6-digit length + record + newline to .nni/metrics', async () => {
    writeFileSync(join(sysDir, 'parameter.cfg'), TR(4));
    const channel = channelFromEnvironment({ NNI_PLATFORM: 'local', NNI_SYS_DIR: sysDir, NNI_TRIAL_JOB_ID: 'xY7z0' });
    await channel.receiveParameter();
    await channel.reportIntermediate(0.25);
    await channel.reportFinal({ default: 0.75, note: 'é' });
    const bytes = readFileSync(join(sysDir, '.nni', 'metrics'));
    const first = '{"parameter_id":4,"trial_job_id":"xY7z0","type":"PERIODICAL","sequence":0,"value":"0.25"}\n';
    const second =
      '{"parameter_id":4,"trial_job_id":"xY7z0","type":"FINAL","sequence":0,"value":"{\\"default\\":0.75,\\"note\\":\\"é\\"}"}\n';
    const expected = Buffer.concat(
      [first, second].map((record) => {
        const data = Buffer.from(record, 'utf8'); // the length counts bytes, newline included
        return Buffer.concat([Buffer.from(`ME${String(data.length).padStart(6, '0')}`), data]);
      }),
    );
    expect(bytes.equals(expected)).toBe(true);
  });

  it('uses stdout when the platform is not local', () => {
    const channel = channelFromEnvironment({ NNI_PLATFORM: 'aml', NNI_SYS_DIR: sysDir });
    expect(channel.transport.name).toBe('legacy-stdout');
  });
});

describe('channel rules', () => {
  const standalone = () => {
    const lines: string[] = [];
    return { lines, channel: new TrialChannel(new StandaloneTransport({ a: 1 }, (t) => lines.push(t)), 'standalone') };
  };

  it('requests exactly one parameter and reports exactly one FINAL', async () => {
    const { channel, lines } = standalone();
    await expect(channel.reportFinal(1)).rejects.toThrow(/only after receiving the parameter/);
    await channel.receiveParameter();
    await expect(channel.receiveParameter()).rejects.toThrow(/exactly once/);
    await channel.reportFinal(1);
    await expect(channel.reportFinal(2)).rejects.toThrow(/already reported/);
    await expect(channel.reportIntermediate(2)).rejects.toThrow(/already reported/);
    expect(lines).toHaveLength(1);
  });

  it('refuses object-valued extra keys and non-finite values', async () => {
    const { channel } = standalone();
    await channel.receiveParameter();
    await expect(channel.reportFinal({ default: 1, arch: { x: 1 } } as never)).rejects.toThrow(/"arch" must be a scalar/);
    await expect(channel.reportFinal(Number.NaN)).rejects.toThrow(/finite/);
    await expect(channel.reportFinal({ loss: 1 } as never)).rejects.toThrow(/"default"/);
  });

  it('refuses to guess when NNI is absent and no parameters were given', () => {
    expect(() => channelFromEnvironment({})).toThrow(/not running under NNI/);
  });
});
