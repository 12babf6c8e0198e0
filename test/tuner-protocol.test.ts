/*
 * The tuner loop (tuner/tuner.ts, tuner/transport.ts, tuner/protocol.ts) against the fake NNI
 * manager (test/fake-nni-manager.ts), in this process, with a recording strategy in place of the
 * controller. The real entry point and the Python hand-over are tested in tuner-launcher.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SPECS, fromTokens, searchSpaceOf, toParams, uniformTokens, type SpaceSpec } from '../search-spaces/spaces.js';
import { DEFAULT_REWARD, parseClassArgs, type RewardOptions } from '../tuner/args.js';
import { WsTransport, type Logger } from '../tuner/transport.js';
import { CHECKPOINT_FILE, runTuner, type Checkpoint } from '../tuner/tuner.js';
import { FakeNniManager, type FakeManagerOptions } from './fake-nni-manager.js';
import { RecordingStrategy } from './fixtures/recording-strategy.js';

const SPEC = DEFAULT_SPECS.nb201;
const SPACE = searchSpaceOf(SPEC);
const tokensOf = (n: number, spec: SpaceSpec = SPEC) => RecordingStrategy.tokensOf(spec, n);
const paramsOf = (n: number, spec: SpaceSpec = SPEC) => toParams(fromTokens(spec, tokensOf(n, spec)), spec);
/** The TR content of our n-th proposal under parameter id `id`, byte for byte. */
const trContent = (id: number, n = id) =>
  JSON.stringify({ parameter_id: id, parameter_source: 'algorithm', parameters: paramsOf(n), parameter_index: 0 });

interface TestLog extends Logger {
  lines: string[];
}

function testLog(): TestLog {
  const lines: string[] = [];
  const at = (level: string) => (text: string) => {
    lines.push(`${level} ${text}`);
    if (process.env.TUNER_TEST_VERBOSE) console.error(`${level} ${text}`);
  };
  return { lines, trace: at('TRACE'), debug: at('DEBUG'), info: at('INFO'), warning: at('WARNING'), error: at('ERROR') };
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const managers: FakeNniManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
});

interface Session {
  manager: FakeNniManager;
  exit: Promise<number>;
  log: TestLog;
  /** Every strategy the tuner created, in order (a new one per search space). */
  strategies: RecordingStrategy[];
}

/** A started transport, as tuner/main.ts hands it to runTuner. */
function connect(url: string, log: Logger, reconnectWindowMs?: number): WsTransport {
  const transport = new WsTransport(url, { log, reconnectWindowMs });
  transport.start();
  return transport;
}

interface TunerOptions {
  /** observe() reports a policy update every that many rewards. */
  updateEvery?: number;
  reward?: RewardOptions;
  reconnectWindowMs?: number;
  /** The strategy's load finishes when this settles; a rejection is a failed load. */
  loaded?: Promise<void>;
  warmup?: { trials: number; seed: number };
}

async function session(
  managerOptions: Partial<FakeManagerOptions> = {},
  { updateEvery = 1, reward = DEFAULT_REWARD, reconnectWindowMs, loaded, warmup }: TunerOptions = {},
): Promise<Session> {
  const manager = new FakeNniManager({ searchSpace: SPACE, trialConcurrency: 2, pingIntervalMs: 50, ...managerOptions });
  await manager.start();
  managers.push(manager);
  const log = testLog();
  const strategies: RecordingStrategy[] = [];
  const exit = runTuner({
    transport: connect(manager.url, log, reconnectWindowMs),
    load: async () => {
      await loaded;
      return {
        createStrategy: (spec) => {
          strategies.push(new RecordingStrategy(spec, updateEvery));
          return strategies.at(-1)!;
        },
        reward,
        warmup,
      };
    },
    resume: managerOptions.mode === 'resume',
    checkpointDir: join(manager.experimentDir, 'checkpoint'),
    log,
  });
  return { manager, exit, log, strategies };
}

/** A promise settled from outside; a rejection before anyone awaits it is not an unhandled one. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((yes, no) => ((resolve = yes), (reject = no)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Submits the waiting TRs as trials; each asks for its parameters in submission order. */
function startTrials(manager: FakeNniManager): string[] {
  return manager.submitTrials().map((trial) => {
    manager.requestParameter(trial.id);
    return trial.id;
  });
}

async function stop(s: Session): Promise<void> {
  await s.manager.terminate();
  expect(await s.exit).toBe(0);
}

describe('tuner protocol', () => {
  it('sends nothing before IN, answers ID, then one TR per GE request in NNI format with ids 0, 1, …', async () => {
    const s = await session({ trialConcurrency: 3 });
    const { manager } = s;
    const first = await manager.waitForTuner('TR', 3);
    expect(manager.frames[0]).toMatchObject({ direction: 'to-tuner', type: 'IN', content: JSON.stringify(SPACE) });
    expect(manager.fromTuner()[0]!.text).toBe('{"type":"ID","content":""}');
    expect(manager.frames.map((f) => f.type).slice(0, 3)).toEqual(['IN', 'ID', 'GE']);
    expect(manager.frames[2]!.content).toBe('3');
    expect(first.map((f) => f.text)).toEqual([0, 1, 2].map((id) => JSON.stringify({ type: 'TR', content: trContent(id) })));

    // A poll with three ended trials asks for three more.
    const trials = startTrials(manager);
    manager.endTrials(trials.map((trialId) => ({ trialId, event: 'SUCCEEDED' })));
    const more = await manager.waitForTuner('TR', 6);
    expect(more.slice(3).map((f) => JSON.parse(f.content!).parameter_id)).toEqual([3, 4, 5]);
    expect(manager.frames.filter((f) => f.type === 'GE').map((f) => f.content)).toEqual(['3', '3']);

    await until(() => manager.pongs > 0, 'a pong');
    const teAt = manager.frames.length;
    await stop(s);
    expect(manager.frames.slice(teAt).filter((f) => f.direction === 'from-tuner')).toEqual([]);
    expect(manager.status).toBe('STOPPED');
    expect(s.strategies[0]!.disposed).toBe(true);
  });

  it('answers, in order, the commands that arrived while its strategy was loading', async () => {
    const loaded = deferred();
    const s = await session({ trialConcurrency: 2 }, { loaded: loaded.promise });
    const { manager } = s;
    await manager.waitFor((f) => f.type === 'IN');
    manager.send('GE', '1');
    await manager.roundTrip();
    // The tuner has read IN and GE 1, and answered nothing yet.
    expect(manager.fromTuner()).toEqual([]);
    expect(s.strategies).toEqual([]);

    loaded.resolve();
    const trs = await manager.waitForTuner('TR', 3);
    // ID and the TR for the early GE 1 go out together; the manager's GE 2 (sent on ID) follows.
    expect(manager.frames.map((f) => `${f.direction === 'to-tuner' ? '>' : '<'} ${f.type} ${f.type === 'GE' ? f.content : ''}`.trim())).toEqual([
      '> IN',
      '> GE 1',
      '< ID',
      '> GE 2',
      '< TR',
      '< TR',
      '< TR',
    ]);
    expect(trs.map((f) => f.text)).toEqual([0, 1, 2].map((id) => JSON.stringify({ type: 'TR', content: trContent(id) })));
    await stop(s);
  });

  it('reports a strategy that fails to load with ER at IN and exits 1, whether the load fails before IN or after', async () => {
    const problem = 'cannot start TensorFlow.js for the controller: backend wasm is not available: no WebAssembly';
    for (const when of ['before IN', 'after IN']) {
      const loaded = deferred();
      if (when === 'before IN') loaded.reject(new Error(problem));
      const s = await session({ trialConcurrency: 1 }, { loaded: loaded.promise });
      if (when === 'after IN') {
        await s.manager.waitFor((f) => f.type === 'IN');
        await s.manager.roundTrip();
        loaded.reject(new Error(problem));
      }
      expect(await s.exit, when).toBe(1);
      expect(s.manager.fromTuner().map((f) => f.type), when).toEqual(['ER', '_bye_']);
      expect(s.manager.dispatcherErrors, when).toEqual([`nni-enas tuner: ${problem}`]);
      expect(s.manager.status, when).toBe('ERROR');
      expect(s.log.lines, when).toContain(`ERROR fatal: ${problem}`);
      expect(s.strategies, when).toEqual([]);
    }
  });

  it('feeds a FINAL metric to the tokens of its parameter id, whether it comes before or after EN', async () => {
    const s = await session({ trialConcurrency: 2 });
    const { manager } = s;
    await manager.waitForTuner('TR', 2);
    const [a, b] = startTrials(manager);
    manager.reportMetric(a!, 'PERIODICAL', 0.1);
    manager.reportMetric(a!, 'PERIODICAL', { default: 0.2, loss: 0.8 });
    manager.reportMetric(a!, 'FINAL', { default: 0.5, accuracy: 0.25 });
    manager.endTrials([{ trialId: a!, event: 'SUCCEEDED' }]);
    // Trial b's metric arrives after its EN (sent raw: the real manager drops such metrics).
    const late = manager.metricRecord(b!, 'FINAL', 0.75);
    manager.endTrials([{ trialId: b!, event: 'SUCCEEDED' }]);
    await manager.waitForTuner('TR', 4);
    expect(s.strategies[0]!.observations).toEqual([{ tokens: tokensOf(0), reward: 0.5 }]);
    manager.send('ME', late);
    await until(() => s.strategies[0]!.observations.length === 2, 'the late reward');
    expect(s.strategies[0]!.observations[1]).toEqual({ tokens: tokensOf(1), reward: 0.75 });
    await stop(s);
  });

  it('warm-up trials get uniform architectures from (seed, id), and their rewards do not reach the strategy', async () => {
    const s = await session({ trialConcurrency: 2 }, { warmup: { trials: 2, seed: 7 } });
    const { manager } = s;
    await manager.waitForTuner('TR', 2);
    const sent = manager.fromTuner('TR').map((f) => JSON.parse(f.content!) as { parameter_id: number; parameters: unknown });
    expect(sent.map((tr) => tr.parameters)).toEqual([0, 1].map((id) => toParams(fromTokens(SPEC, uniformTokens(SPEC, 7, id)), SPEC)));
    const [a, b] = startTrials(manager);
    manager.reportMetric(a!, 'FINAL', 0.5);
    manager.reportMetric(b!, 'FINAL', 0.6);
    manager.endTrials([
      { trialId: a!, event: 'SUCCEEDED' },
      { trialId: b!, event: 'SUCCEEDED' },
    ]);
    await manager.waitForTuner('TR', 4);
    // Ids 2 and 3 come from the strategy (its first two proposals); the warm-up rewards were not observed.
    expect(manager.fromTuner('TR').slice(2, 4).map((f) => f.content)).toEqual([trContent(2, 0), trContent(3, 1)]);
    const [c] = startTrials(manager);
    manager.reportMetric(c!, 'FINAL', 0.7);
    manager.endTrials([{ trialId: c!, event: 'SUCCEEDED' }]);
    await until(() => s.strategies[0]!.observations.length === 1, 'the first post-warm-up reward');
    expect(s.strategies[0]!.observations).toEqual([{ tokens: tokensOf(0), reward: 0.7 }]);
    expect(s.log.lines.filter((l) => l.includes('warm-up parameter'))).toHaveLength(2);
    await stop(s);
  });

  it('matches rewards by the metric parameter_id when NNI swaps parameters between concurrent trials', async () => {
    const s = await session({ trialConcurrency: 2 });
    const { manager } = s;
    await manager.waitForTuner('TR', 2);
    const [a, b] = manager.submitTrials().map((t) => t.id);
    // b asks first and gets a's parameters (id 0); a gets id 1 (V3asV1's single FIFO).
    expect(manager.requestParameter(b!).parameter_id).toBe(0);
    expect(manager.requestParameter(a!).parameter_id).toBe(1);
    manager.reportMetric(a!, 'FINAL', 0.1);
    manager.reportMetric(b!, 'FINAL', 0.9);
    manager.endTrials([
      { trialId: a!, event: 'SUCCEEDED' },
      { trialId: b!, event: 'SUCCEEDED' },
    ]);
    await manager.waitForTuner('TR', 4);
    const ends = manager.frames.filter((f) => f.type === 'EN').map((f) => JSON.parse(f.content!));
    expect(JSON.parse(ends[0].hyper_params).parameter_id).toBe(0); // EN of a claims id 0 …
    expect(s.strategies[0]!.observations).toEqual([
      { tokens: tokensOf(1), reward: 0.1 }, // … but a ran id 1
      { tokens: tokensOf(0), reward: 0.9 },
    ]);
    await stop(s);
  });

  it('gives no reward for failed or cancelled trials and for trials without a FINAL metric', async () => {
    const s = await session({ trialConcurrency: 3 });
    const { manager, log } = s;
    await manager.waitForTuner('TR', 3);
    const [failed, reportedThenFailed, silent] = startTrials(manager);
    manager.reportMetric(reportedThenFailed!, 'FINAL', 0.4);
    manager.reportMetric(silent!, 'PERIODICAL', 0.3);
    manager.endTrials([
      { trialId: failed!, event: 'FAILED' },
      { trialId: reportedThenFailed!, event: 'USER_CANCELED' },
      { trialId: silent!, event: 'SUCCEEDED' },
    ]);
    await manager.waitForTuner('TR', 6);
    expect(s.strategies[0]!.observations).toEqual([]);
    expect(log.lines).toContain(`INFO trial ${failed} ended FAILED without a FINAL metric: no reward`);
    expect(log.lines).toContain(`INFO trial ${reportedThenFailed} ended USER_CANCELED: its FINAL metric (reward 0.4) is not used`);
    expect(log.lines).toContain(`INFO trial ${silent} ended SUCCEEDED without a FINAL metric: no reward`);
    await stop(s);
  });

  it('applies reward_metric and reward_transform "inverse" (reward = constant / metric)', async () => {
    const reward = parseClassArgs({ reward_metric: 'ppl', reward_transform: 'inverse', reward_constant: 80 }).reward;
    const s = await session({ trialConcurrency: 2 }, { reward });
    const { manager, log } = s;
    await manager.waitForTuner('TR', 2);
    const [a, b] = startTrials(manager);
    manager.reportMetric(a!, 'FINAL', { default: 1, ppl: 160 });
    manager.reportMetric(b!, 'FINAL', 0.5); // a plain number has no "ppl"
    manager.endTrials([
      { trialId: a!, event: 'SUCCEEDED' },
      { trialId: b!, event: 'SUCCEEDED' },
    ]);
    await manager.waitForTuner('TR', 4);
    expect(s.strategies[0]!.observations).toEqual([{ tokens: tokensOf(0), reward: 0.5 }]);
    expect(log.lines.some((l) => l.includes(`trial ${b}: no reward from its FINAL metric`) && l.includes('"ppl"'))).toBe(true);
    await stop(s);
  });

  it('accepts web-UI "customized" trials whose parameters are of our space and ignores the others', async () => {
    const s = await session({ trialConcurrency: 2 });
    const { manager, log } = s;
    await manager.waitForTuner('TR', 2);
    manager.waitingTrials.length = 0; // only the two web-UI trials run
    manager.addCustomizedTrial(paramsOf(4));
    manager.addCustomizedTrial({ lr: 0.1 });
    const [ours, foreign] = startTrials(manager);
    expect(JSON.parse(manager.metricRecord(ours!, 'PERIODICAL', 0)).parameter_id).toBeNull();
    manager.reportMetric(ours!, 'FINAL', 0.6);
    manager.reportMetric(foreign!, 'FINAL', 0.7);
    manager.endTrials([
      { trialId: ours!, event: 'SUCCEEDED' },
      { trialId: foreign!, event: 'SUCCEEDED' },
    ]);
    await manager.waitForTuner('TR', 4);
    expect(s.strategies[0]!.observations).toEqual([{ tokens: tokensOf(4), reward: 0.6 }]);
    expect(log.lines.some((l) => l.startsWith(`INFO web-UI trial ${foreign} ignored`) && l.includes('unknown key "lr"'))).toBe(true);
    await stop(s);
  });

  it('logs bad frames with their text and carries on', async () => {
    const s = await session({ trialConcurrency: 1 });
    const { manager, log } = s;
    await manager.waitForTuner('TR', 1);
    const bad = [
      'not json',
      '{"type":"XX","content":""}',
      '{"type":"GE","content":"two"}',
      '{"type":"GE"}',
      '{"type":"ME","content":"{\\"type\\":\\"FINAL\\"}"}',
      '{"type":"EN","content":"{\\"trial_job_id\\":\\"x\\",\\"event\\":\\"DONE\\",\\"hyper_params\\":\\"{}\\"}"}',
    ];
    for (const text of bad) manager.sendText(text);
    manager.send('GE', '1');
    await manager.waitForTuner('TR', 2);
    const errors = log.lines.filter((l) => l.startsWith('ERROR bad frame ignored'));
    expect(errors).toHaveLength(bad.length);
    bad.forEach((text, i) => expect(errors[i]!.endsWith(`: ${text}`)).toBe(true));
    expect(errors[1]).toContain('key "type"');
    expect(errors[4]).toContain('missing key "trial_job_id"');
    expect(errors[5]).toContain('key "event"');
    await stop(s);
  });

  it('re-initialises for a new search space (SS) and reports ER for one that is not ours', async () => {
    const s = await session({ trialConcurrency: 1 });
    const { manager } = s;
    await manager.waitForTuner('TR', 1);
    const micro = { space: 'micro', nodes: 2, ops: ['sepconv3x3', 'identity'] } as SpaceSpec;
    manager.updateSearchSpace(searchSpaceOf(micro));
    manager.send('GE', '1');
    const [, tr] = await manager.waitForTuner('TR', 2);
    expect(s.strategies).toHaveLength(2);
    expect(s.strategies[0]!.disposed).toBe(true);
    expect(JSON.parse(tr!.content!)).toEqual({ parameter_id: 1, parameter_source: 'algorithm', parameters: paramsOf(0, micro), parameter_index: 0 });

    manager.updateSearchSpace({ lr: { _type: 'uniform', _value: [0, 1] } });
    expect(await s.exit).toBe(1);
    expect(manager.status).toBe('ERROR');
    expect(manager.dispatcherErrors).toHaveLength(1);
    expect(manager.dispatcherErrors[0]).toContain("not one of nni-enas's spaces");
    expect(manager.dispatcherErrors[0]).toContain('key "lr._type"');
  });

  it('exits cleanly on _bye_ and close without TE, and does not reconnect', async () => {
    const s = await session({ trialConcurrency: 1 });
    await s.manager.waitForTuner('TR', 1);
    await s.manager.closeChannel('shutdown');
    expect(await s.exit).toBe(0);
    await new Promise((r) => setTimeout(r, 300)); // a reconnect would have happened by now
    expect(s.manager.connections).toBe(1);
  });

  it('reconnects after a dropped connection; the manager replays what it queued and the session goes on', async () => {
    const s = await session({ trialConcurrency: 2 });
    const { manager, log } = s;
    await manager.waitForTuner('TR', 2);
    const [a, b] = startTrials(manager);
    manager.reportMetric(a!, 'FINAL', 0.5);
    // Dropping a socket can lose what it was still carrying; let the tuner have the ME first.
    await until(() => log.lines.some((l) => l.startsWith('DEBUG receive {"type":"ME"')), 'the tuner receiving ME');
    manager.dropConnection();
    // Sent while the tuner is away: queued by the manager, replayed on the new connection.
    manager.endTrials([
      { trialId: a!, event: 'SUCCEEDED' },
      { trialId: b!, event: 'FAILED' },
    ]);
    const trs = await manager.waitForTuner('TR', 4);
    expect(manager.connections).toBe(2);
    expect(trs.slice(2).map((f) => f.connection)).toEqual([1, 1]);
    expect(trs.slice(2).map((f) => JSON.parse(f.content!).parameter_id)).toEqual([2, 3]);
    expect(s.strategies[0]!.observations).toEqual([{ tokens: tokensOf(0), reward: 0.5 }]);
    expect(log.lines.some((l) => l.startsWith('WARNING connection to') && l.includes('lost (close code 1006'))).toBe(true);
    expect(manager.status).toBe('RUNNING');
    await stop(s);
  });

  it('transport: keeps what the tuner sends while disconnected and delivers it after reconnecting', async () => {
    const manager = new FakeNniManager({ searchSpace: SPACE, trialConcurrency: 1 });
    await manager.start();
    managers.push(manager);
    const log = testLog();
    const transport = new WsTransport(manager.url, { log });
    transport.start();
    await manager.waitFor((f) => f.type === 'IN');
    manager.dropConnection();
    await until(() => log.lines.some((l) => l.includes('lost (close code 1006')), 'the loss noticed');
    transport.send({ type: 'ID', content: '' });
    const [id] = await manager.waitForTuner('ID');
    expect(id!.connection).toBe(1);
    transport.terminate('test over');
  });

  it('gives up with a clear error when the manager does not come back within the window', async () => {
    const s = await session({ trialConcurrency: 1 }, { reconnectWindowMs: 1000 });
    await s.manager.waitForTuner('TR', 1);
    await s.manager.stop();
    expect(await s.exit).toBe(1);
    expect(s.log.lines.some((l) => l.startsWith('ERROR could not (re)connect to the NNI manager') && l.includes('within 1 s'))).toBe(true);
  });

  it('exits non-zero with a log line, sending nothing, when no manager is there before IN', async () => {
    const log = testLog();
    const code = await runTuner({
      transport: connect('ws://127.0.0.1:9/tuner', log, 500),
      load: async () => ({ createStrategy: (spec) => new RecordingStrategy(spec), reward: DEFAULT_REWARD }),
      resume: false,
      log,
    });
    expect(code).toBe(1);
    expect(log.lines.at(-1)).toMatch(/^ERROR could not \(re\)connect to the NNI manager at ws:\/\/127\.0\.0\.1:9\/tuner/);
  });

  it('on resume, a warm-up trial that ended while the tuner was down is matched to its proposal by architecture and stays out of the controller', async () => {
    const warmup = { trials: 2, seed: 5 };
    const first = await session({ trialConcurrency: 2 }, { warmup });
    const proposals = (await first.manager.waitForTuner('TR', 2)).map((f) => JSON.parse(f.content!) as { parameter_id: number; parameters: unknown });
    await stop(first);
    const dir = first.manager.experimentDir;
    // Both warm-up trials finished while no tuner ran: FD brings their rewards back, without parameter ids.
    const imported = proposals.map((p, i) => ({ parameter: p.parameters, value: String(0.6 + i / 10), trialJobId: `Wu${i}` }));
    const second = await session({ trialConcurrency: 1, mode: 'resume', experimentDir: dir, imported, recovered: [] }, { warmup });
    await second.manager.waitForTuner('TR', 1);
    expect(second.log.lines).toContain('INFO reward 0.6 for warm-up parameter 0 (trial Wu0) recorded, not used');
    expect(second.log.lines).toContain('INFO reward 0.7 for warm-up parameter 1 (trial Wu1) recorded, not used');
    expect(second.log.lines).toContain('INFO FD: 2 trials: 0 fed to the controller, 2 warm-up rewards recorded, not used, 0 already in the checkpoint, 0 ignored');
    expect(second.strategies[0]!.observations).toEqual([]);
    await stop(second);
    const saved = JSON.parse(readFileSync(join(dir, 'checkpoint', CHECKPOINT_FILE), 'utf8')) as Checkpoint;
    expect(saved.history.map((r) => [r.parameterId, r.trialJobId])).toEqual([
      [0, 'Wu0'],
      [1, 'Wu1'],
    ]);
  });

  it('resumes from its checkpoint: ids continue, history is kept, FD counts each reward once, AD trials still score', async () => {
    // First run: ids 0, 1 proposed; id 0 rewarded; the experiment stops with id 1 still running.
    const first = await session({ trialConcurrency: 2 });
    await first.manager.waitForTuner('TR', 2);
    const [a] = startTrials(first.manager); // the second trial keeps running id 1
    first.manager.reportMetric(a!, 'FINAL', 0.5);
    first.manager.endTrials([{ trialId: a!, event: 'SUCCEEDED' }]);
    await first.manager.waitForTuner('TR', 3);
    await stop(first);
    const dir = first.manager.experimentDir;
    const saved = JSON.parse(readFileSync(join(dir, 'checkpoint', CHECKPOINT_FILE), 'utf8')) as Checkpoint;
    expect(saved.nextParameterId).toBe(3);
    expect(saved.outstanding.map((p) => p.parameterId)).toEqual([1, 2]);
    expect(saved.history).toEqual([{ parameterId: 0, trialJobId: a, source: 'trial', tokens: tokensOf(0), reward: 0.5 }]);

    // nnictl resume: FD replays every finished trial plus imports; AD lists the trial that was running.
    const imported = [
      { parameter: paramsOf(0), value: '0.5', trialJobId: a }, // counted before the stop
      { parameter: paramsOf(7), value: '{"default": 0.8}', trialJobId: 'Zz9Zz' }, // ended after the last checkpoint
      { parameter: paramsOf(8), value: 0.3 }, // an import-data entry, raw value
    ];
    const recovered = [{ parameter_id: 1, parameter_source: 'resumed', parameters: paramsOf(1), parameter_index: 0 }];
    const second = await session({ trialConcurrency: 2, mode: 'resume', experimentDir: dir, imported, recovered });
    const { manager } = second;
    const trs = await manager.waitForTuner('TR', 2);
    expect(manager.frames.map((f) => f.type).slice(0, 5)).toEqual(['IN', 'ID', 'FD', 'AD', 'GE']);
    // The real NNI dispatcher would restart at 0 (NNI-PROTOCOL a.6); ours continues.
    expect(trs.map((f) => JSON.parse(f.content!).parameter_id)).toEqual([3, 4]);
    expect(trs.map((f) => JSON.parse(f.content!).parameters)).toEqual([paramsOf(3), paramsOf(4)]);
    expect(second.log.lines).toContain('INFO FD: 3 trials: 2 fed to the controller, 1 already in the checkpoint, 0 ignored');
    expect(second.log.lines).toContain('INFO AD: 1 recovered trials await rewards; 1 proposals that will not run dropped (ids 2)');

    // The recovered trial (parameter id 1) runs again and reports.
    manager.waitingTrials.unshift(JSON.stringify(recovered[0]));
    const [rerun] = manager.submitTrials().map((t) => t.id);
    manager.requestParameter(rerun!);
    manager.reportMetric(rerun!, 'FINAL', 0.9);
    manager.endTrials([{ trialId: rerun!, event: 'SUCCEEDED' }]);
    await manager.waitForTuner('TR', 3);
    expect(second.strategies[0]!.observations).toEqual([
      { tokens: tokensOf(0), reward: 0.5 }, // restored from the checkpoint
      { tokens: tokensOf(7), reward: 0.8 },
      { tokens: tokensOf(8), reward: 0.3 },
      { tokens: tokensOf(1), reward: 0.9 },
    ]);
    await stop(second);

    // A second resume replays the same FD (plus the rerun): all of it is already counted.
    const third = await session({
      trialConcurrency: 1,
      mode: 'resume',
      experimentDir: dir,
      imported: [...imported, { parameter: paramsOf(1), value: '0.9', trialJobId: rerun }],
    });
    const [next] = await third.manager.waitForTuner('TR', 1);
    expect(JSON.parse(next!.content!).parameter_id).toBe(6);
    expect(third.log.lines).toContain('INFO FD: 4 trials: 0 fed to the controller, 4 already in the checkpoint, 0 ignored');
    expect(third.strategies[0]!.observations).toHaveLength(4);
    await stop(third);
  });
});
