/*
 * A fake NNI manager for tests: the tuner side of ts/nni_manager as NNI-PROTOCOL.md describes it,
 * since NNI itself is never installed here. It serves the tuner WebSocket on 127.0.0.1 (random
 * port, path /tuner), launches the tuner exactly as NNI does (`/bin/sh -c "<python> -m nni
 * --exp_params <b64>"` in <exp>/log, with the NNI_* environment; `nni` is test/fixtures/fake-nni),
 * and plays the experiment loop: IN, then (resume: FD, AD) GE <concurrency> after ID; trials
 * whose parameters come from one FIFO, as V3asV1 hands them out; ME/EN/GE as its poll loop sends
 * them; TE + `_bye_` + close(4000) to stop. Every frame both ways is recorded.
 *
 * Layers, so trial spawning and the HTTP trial channel (test/fake-trial-channel.ts) can be added:
 *   channel   — connection, heartbeat, reconnect window, send queue, `frames`, `waitFor`
 *   loop      — reactions to ID/TR/ER/…, `submitTrials`, `endTrials`, `forwardMetric`
 *   launcher  — `expParams`, `env`, `launchTuner`
 * `onTrialSubmitted` is the hook where a trial process would be started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Directory holding the stand-in `nni` package that `python -m nni` runs. */
export const FAKE_NNI_PATH = join(REPO, 'test', 'fixtures', 'fake-nni');

export type TrialEvent = 'SUCCEEDED' | 'FAILED' | 'USER_CANCELED' | 'EARLY_STOPPED' | 'SYS_CANCELED';

export interface Frame {
  direction: 'to-tuner' | 'from-tuner';
  /** The message exactly as it went over the socket. */
  text: string;
  type: string;
  content?: string;
  /** Which connection (0, 1, … after reconnects) carried it. */
  connection: number;
  /** performance.now() when it was sent or received. */
  at: number;
}

export interface TrialJob {
  id: string;
  sequenceId: number;
  /** The TR content the manager associated with the trial (what EN's hyper_params will say). */
  hyperParams: string;
  /** The TR content the trial actually got from the parameter FIFO, once it asked. */
  received?: string;
  status: 'RUNNING' | TrialEvent;
  /** Next PERIODICAL sequence number. */
  nextSequence: number;
}

export interface FakeManagerOptions {
  /** Sent in IN (and the tuner's only view of it). */
  searchSpace: object;
  trialConcurrency: number;
  maxTrialNumber?: number;
  classArgs?: Record<string, unknown> | null;
  /** NNI_MODE; "resume" sends FD (`imported`) and AD (`recovered`) after ID, as nnictl resume does. */
  mode?: 'start' | 'resume';
  imported?: unknown[];
  recovered?: unknown[];
  /** WebSocket ping period (NNI: 5 s). */
  pingIntervalMs?: number;
  /** How long a lost tuner may take to reconnect before the experiment fails (NNI: 30 s). */
  reconnectWindowMs?: number;
  /** The experiment directory <exp> (log/, checkpoint/); a fresh temporary one by default. */
  experimentDir?: string;
  logLevel?: string;
  /** Called for every trial the loop submits: start a trial process here. */
  onTrialSubmitted?: (trial: TrialJob) => void;
}

export interface LaunchedTuner {
  /** The /bin/sh process, whose PID NNI remembers as the dispatcher's. */
  shell: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export type ExperimentStatus = 'INITIALIZED' | 'RUNNING' | 'NO_MORE_TRIAL' | 'DONE' | 'TUNER_NO_MORE_TRIAL' | 'ERROR' | 'STOPPED';

const TRIAL_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class FakeNniManager {
  readonly frames: Frame[] = [];
  readonly experimentDir: string;
  status: ExperimentStatus = 'INITIALIZED';
  /** As GET /check-status reports them. */
  readonly errors: string[] = [];
  /** ER contents (NNI only writes them to nnimanager.log). */
  readonly dispatcherErrors: string[] = [];
  /** Tuner connections accepted so far (1 + reconnects). */
  connections = 0;
  pongs = 0;
  port = 0;
  /** TR contents not yet submitted as trials (NNI's waitingTrials). */
  readonly waitingTrials: string[] = [];
  /** Parameters of submitted trials not yet asked for (V3asV1's single FIFO). */
  readonly parameterQueue: string[] = [];
  readonly trials = new Map<string, TrialJob>();
  submittedTrials = 0;

  private readonly options: FakeManagerOptions;
  private http: Server | undefined;
  private wss: WebSocketServer | undefined;
  private socket: WebSocket | null = null;
  private queue: string[] = [];
  private closing = false;
  private missingPongs = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private lostTimer: NodeJS.Timeout | undefined;
  private waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  /** roundTrip() pings waiting for their pong, by payload. */
  private roundTrips = new Map<string, () => void>();
  private nextRoundTrip = 0;

  constructor(options: FakeManagerOptions) {
    this.options = options;
    this.experimentDir = options.experimentDir ?? mkdtempSync(join(tmpdir(), 'fake-nni-'));
    mkdirSync(join(this.experimentDir, 'log'), { recursive: true });
    mkdirSync(join(this.experimentDir, 'checkpoint'), { recursive: true });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/tuner`;
  }

  // ---- channel ------------------------------------------------------------------------------

  async start(): Promise<void> {
    this.http = createServer((_req, res) => res.writeHead(404).end());
    this.wss = new WebSocketServer({ server: this.http, path: '/tuner' });
    this.wss.on('connection', (ws) => this.accept(ws));
    await new Promise<void>((done) => this.http!.listen(0, '127.0.0.1', done));
    this.port = (this.http.address() as AddressInfo).port;
    this.heartbeat = setInterval(() => this.ping(), this.options.pingIntervalMs ?? 5000);
  }

  /** Closes everything without protocol (test teardown). */
  async stop(): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.lostTimer);
    for (const client of this.wss?.clients ?? []) client.terminate();
    await new Promise<void>((done) => (this.wss ? this.wss.close(() => done()) : done()));
    await new Promise<void>((done) => (this.http ? this.http.close(() => done()) : done()));
  }

  /** Sends a command, or queues it while the tuner is disconnected (replayed on reconnect). */
  send(type: string, content?: string): void {
    this.sendText(JSON.stringify(content === undefined ? { type } : { type, content }));
  }

  /** Sends any text as one message (for malformed frames). */
  sendText(text: string): void {
    if (this.closing) throw new Error(`channel closed; cannot send ${text}`);
    if (!this.socket) {
      this.queue.push(text);
      return;
    }
    this.record('to-tuner', text);
    this.socket.send(text);
  }

  /** Drops the connection without `_bye_` (the tuner sees close code 1006) and waits for a reconnect. */
  dropConnection(): void {
    const socket = this.socket;
    this.lost();
    socket?.terminate();
  }

  /** `nnictl stop`: TE, then the channel closes; resolves once the socket is closed. */
  async terminate(): Promise<void> {
    this.send('TE');
    this.status = 'STOPPED';
    await this.closeChannel('TE command');
  }

  /** NNI's intentional close: `_bye_` with a reason, then close(4000); resolves once closed. */
  async closeChannel(reason: string): Promise<void> {
    const socket = this.socket;
    this.sendText(JSON.stringify({ type: '_bye_', reason }));
    this.closing = true;
    if (!socket || socket.readyState === socket.CLOSED) return;
    await new Promise<void>((done) => {
      socket.once('close', () => done());
      socket.close(4000, reason);
    });
  }

  /**
   * Resolves once the tuner has read everything sent before: a ping with a payload of its own
   * travels behind those frames, and the tuner's WebSocket answers it only after reading them.
   */
  roundTrip(): Promise<void> {
    if (!this.socket) throw new Error('no tuner connected');
    const payload = `round trip ${this.nextRoundTrip++}`;
    const done = new Promise<void>((resolve) => this.roundTrips.set(payload, resolve));
    this.socket.ping(payload);
    return done.then(() => void this.roundTrips.delete(payload));
  }

  /** Resolves with the first recorded frame (from index `from`) that passes `test`. */
  waitFor(test: (frame: Frame) => boolean, { from = 0, timeoutMs = 10_000 } = {}): Promise<Frame> {
    const found = this.frames.slice(from).find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { test, resolve: (f: Frame) => (clearTimeout(timer), resolve(f)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        const last = this.frames.slice(-5).map((f) => `${f.direction} ${f.text}`);
        reject(new Error(`no matching frame in ${timeoutMs} ms; last frames:\n${last.join('\n')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Waits until the tuner has sent `count` frames of `type` in total; returns them. */
  async waitForTuner(type: string, count = 1, timeoutMs = 10_000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.fromTuner(type).length < count) {
      const test = (f: Frame) => f.direction === 'from-tuner' && f.type === type;
      await this.waitFor(test, { from: this.frames.length, timeoutMs: Math.max(0, deadline - Date.now()) });
    }
    return this.fromTuner(type).slice(0, count);
  }

  /** Frames the tuner sent, optionally of one type. */
  fromTuner(type?: string): Frame[] {
    return this.frames.filter((f) => f.direction === 'from-tuner' && (!type || f.type === type));
  }

  private accept(ws: WebSocket): void {
    if (this.closing) {
      ws.close(4001, 'manager stopped');
      return;
    }
    const first = this.connections === 0;
    this.connections += 1;
    const old = this.socket;
    this.socket = ws;
    clearTimeout(this.lostTimer);
    this.lostTimer = undefined;
    // A new connection replaces the old one (NNI: "Channel reconnecting, drop previous connection").
    if (old) old.close(4001, 'new epoch start');
    this.missingPongs = 0;
    ws.on('pong', (data) => {
      this.pongs += 1;
      this.missingPongs = 0;
      this.roundTrips.get(String(data))?.();
    });
    ws.on('message', (data) => {
      if (ws === this.socket) this.receive(String(data));
    });
    ws.on('close', () => {
      if (ws === this.socket && !this.closing) this.lost();
    });
    if (first) {
      this.status = 'RUNNING';
      this.send('IN', JSON.stringify(this.options.searchSpace));
    }
    const queued = this.queue;
    this.queue = [];
    for (const text of queued) this.sendText(text);
  }

  private lost(): void {
    this.socket = null;
    if (this.lostTimer) return;
    this.lostTimer = setTimeout(() => {
      this.lostTimer = undefined;
      if (!this.socket && !this.closing) this.fail('Dispatcher stream error, tuner may have crashed.');
    }, this.options.reconnectWindowMs ?? 30_000);
  }

  private ping(): void {
    if (!this.socket || this.closing) return;
    // As NNI: after more than 3 unanswered pings, probe with a real command.
    if (this.missingPongs > 3) this.sendText(JSON.stringify({ type: '_nop_' }));
    this.missingPongs += 1;
    this.socket.ping();
  }

  private record(direction: Frame['direction'], text: string): Frame {
    let type = '?';
    let content: string | undefined;
    try {
      const parsed = JSON.parse(text) as { type?: unknown; content?: unknown };
      type = String(parsed.type);
      if (typeof parsed.content === 'string') content = parsed.content;
    } catch {
      // a deliberately malformed frame: recorded with type "?"
    }
    const frame: Frame = { direction, text, type, content, connection: this.connections - 1, at: performance.now() };
    this.frames.push(frame);
    for (const waiter of [...this.waiters])
      if (waiter.test(frame)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      }
    return frame;
  }

  private fail(error: string): void {
    this.status = 'ERROR';
    this.errors.push(error);
  }

  // ---- experiment loop ----------------------------------------------------------------------

  private receive(text: string): void {
    const frame = this.record('from-tuner', text);
    switch (frame.type) {
      case '_bye_':
        this.closing = true;
        return;
      case 'ID':
        if (this.options.mode === 'resume') {
          this.send('FD', JSON.stringify(this.options.imported ?? []));
          this.send('AD', JSON.stringify(this.options.recovered ?? []));
        }
        this.requestTrialJobs(this.options.trialConcurrency);
        return;
      case 'TR':
        if (this.status === 'TUNER_NO_MORE_TRIAL') this.status = 'RUNNING';
        this.waitingTrials.push(frame.content!);
        return;
      case 'NO':
        if (this.status === 'RUNNING') this.status = 'TUNER_NO_MORE_TRIAL';
        return;
      case 'KI':
        this.endTrials([{ trialId: JSON.parse(frame.content!) as string, event: 'EARLY_STOPPED' }]);
        return;
      case 'ER':
        // NNI logs "Dispatcher error: <content>" and the experiment stops asking for trials.
        this.dispatcherErrors.push(frame.content ?? '');
        this.fail('Dispatcher stream error, tuner may have crashed.');
        return;
      default:
        this.fail('Tuner command event error: Error: unsupported command type from tuner');
    }
  }

  private get limitReached(): boolean {
    return this.submittedTrials >= (this.options.maxTrialNumber ?? Infinity);
  }

  private requestTrialJobs(count: number): void {
    if (count < 1 || this.status === 'ERROR' || this.status === 'STOPPED' || this.limitReached) return;
    this.send('GE', String(count));
  }

  /**
   * Submits waiting TRs as trials, up to the free concurrency slots (NNI's poll loop). Each
   * trial's parameters join the FIFO that `requestParameter` serves.
   */
  submitTrials(): TrialJob[] {
    const submitted: TrialJob[] = [];
    let running = [...this.trials.values()].filter((t) => t.status === 'RUNNING').length;
    while (running < this.options.trialConcurrency && this.waitingTrials.length > 0 && !this.limitReached) {
      const hyperParams = this.waitingTrials.shift()!;
      const id = Array.from({ length: 5 }, () => TRIAL_ID_ALPHABET[Math.floor(Math.random() * TRIAL_ID_ALPHABET.length)]).join('');
      const trial: TrialJob = { id, sequenceId: this.submittedTrials++, hyperParams, status: 'RUNNING', nextSequence: 0 };
      this.trials.set(id, trial);
      this.parameterQueue.push(hyperParams);
      submitted.push(trial);
      running += 1;
      this.options.onTrialSubmitted?.(trial);
    }
    return submitted;
  }

  /** A trial asks for its parameters: it gets the FIFO's head, whichever trial that was meant for. */
  requestParameter(trialId: string): { parameter_id: number | null; parameters: unknown } {
    const trial = this.trial(trialId);
    const content = this.parameterQueue.shift();
    if (content === undefined) throw new Error(`no parameters queued for trial ${trialId}`);
    trial.received = content;
    return JSON.parse(content) as { parameter_id: number | null; parameters: unknown };
  }

  /**
   * The metric record a trial SDK writes (NNI-PROTOCOL b.4): its received parameter_id, and the
   * value JSON-encoded into a string.
   */
  metricRecord(trialId: string, type: 'PERIODICAL' | 'FINAL', value: unknown): string {
    const trial = this.trial(trialId);
    const parameterId = trial.received ? (JSON.parse(trial.received) as { parameter_id: number | null }).parameter_id : null;
    const sequence = type === 'PERIODICAL' ? trial.nextSequence++ : 0;
    return JSON.stringify({ parameter_id: parameterId, trial_job_id: trialId, type, sequence, value: JSON.stringify(value) });
  }

  /** A trial reports a metric; the manager forwards it verbatim as ME. */
  reportMetric(trialId: string, type: 'PERIODICAL' | 'FINAL', value: unknown): void {
    this.forwardMetric(trialId, this.metricRecord(trialId, type, value));
  }

  /** Forwards a record string as ME, unless the trial already ended (NNI drops those). */
  forwardMetric(trialId: string, record: string): void {
    if (this.trials.get(trialId)?.status !== 'RUNNING') return;
    this.send('ME', record);
  }

  /** One poll of NNI's loop: an EN per ended trial, then GE <number ended> (unless at the limit). */
  endTrials(ends: { trialId: string; event: TrialEvent }[]): void {
    for (const { trialId, event } of ends) {
      const trial = this.trial(trialId);
      trial.status = event;
      this.send('EN', JSON.stringify({ trial_job_id: trialId, event, hyper_params: trial.hyperParams }));
    }
    if (this.limitReached) this.status = [...this.trials.values()].some((t) => t.status === 'RUNNING') ? 'NO_MORE_TRIAL' : 'DONE';
    else this.requestTrialJobs(ends.length);
  }

  /** Web-UI "add trial" (REST addCustomizedTrialJob): a waiting trial with parameter_id null. */
  addCustomizedTrial(parameters: unknown): void {
    this.waitingTrials.push(JSON.stringify({ parameter_id: null, parameter_source: 'customized', parameters }));
  }

  /** `nnictl update searchspace`. */
  updateSearchSpace(searchSpace: object): void {
    this.send('SS', JSON.stringify(searchSpace));
  }

  /** `nnictl experiment import`: FD with the list re-serialized (values not stringified). */
  importData(trials: unknown[]): void {
    this.send('FD', JSON.stringify(trials));
  }

  private trial(trialId: string): TrialJob {
    const trial = this.trials.get(trialId);
    if (!trial) throw new Error(`unknown trial ${trialId}`);
    return trial;
  }

  // ---- launcher -----------------------------------------------------------------------------

  /** The canonical experiment config minus searchSpace, base64 (NNI-PROTOCOL a.1). */
  expParams(tuner: { codeDirectory: string; className: string } = defaultTuner()): string {
    const trialCodeDirectory = join(this.experimentDir, 'trial');
    const config = {
      experimentName: 'fake-nni',
      experimentType: 'hpo',
      searchSpaceFile: join(this.experimentDir, 'search_space.json'),
      trialCommand: 'node trial.js',
      trialCodeDirectory,
      trialConcurrency: this.options.trialConcurrency,
      ...(this.options.maxTrialNumber !== undefined ? { maxTrialNumber: this.options.maxTrialNumber } : {}),
      useAnnotation: false,
      debug: false,
      logLevel: this.options.logLevel ?? 'info',
      experimentWorkingDirectory: dirname(this.experimentDir),
      tuner: { ...tuner, classArgs: this.options.classArgs ?? {} },
      trainingService: {
        platform: 'local',
        trialCommand: 'node trial.js',
        trialCodeDirectory,
        debug: false,
        maxTrialNumberPerGpu: 1,
        reuseMode: false,
      },
    };
    return Buffer.from(JSON.stringify(config)).toString('base64');
  }

  /** The variables NNI adds to the dispatcher's environment (NNI-PROTOCOL a.1). */
  env(): Record<string, string> {
    return {
      SDK_PROCESS: 'dispatcher',
      NNI_MODE: this.options.mode ?? 'start',
      NNI_TUNER_COMMAND_CHANNEL: this.url,
      NNI_CHECKPOINT_DIRECTORY: join(this.experimentDir, 'checkpoint'),
      NNI_LOG_DIRECTORY: join(this.experimentDir, 'log'),
      NNI_LOG_LEVEL: this.options.logLevel ?? 'info',
      NNI_INCLUDE_INTERMEDIATE_RESULTS: 'false',
      CUDA_VISIBLE_DEVICES: '',
    };
  }

  /**
   * Starts the dispatcher as NNI does: `/bin/sh -c "<python> -m nni --exp_params <b64>"` in
   * <exp>/log with the manager's environment plus NNI's variables. `env` overrides variables.
   */
  launchTuner({ python = 'python3', env = {}, tuner }: { python?: string; env?: Record<string, string>; tuner?: { codeDirectory: string; className: string } } = {}): LaunchedTuner {
    const pythonPath = [FAKE_NNI_PATH, process.env.PYTHONPATH].filter(Boolean).join(':');
    const shell = spawn('/bin/sh', ['-c', `${python} -m nni --exp_params ${this.expParams(tuner)}`], {
      cwd: join(this.experimentDir, 'log'),
      // No bytecode caches written into the repository by test runs.
      env: { ...process.env, PYTHONPATH: pythonPath, PYTHONDONTWRITEBYTECODE: '1', ...this.env(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    shell.stdout!.on('data', (chunk) => (stdout += String(chunk)));
    shell.stderr!.on('data', (chunk) => (stderr += String(chunk)));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      shell.on('close', (code, signal) => done({ code, signal })),
    );
    return { shell, stdout: () => stdout, stderr: () => stderr, exited };
  }
}

/** The config.yml `tuner` of our plugin. */
export function defaultTuner(): { codeDirectory: string; className: string } {
  return { codeDirectory: join(REPO, 'tuner'), className: 'nni_enas_tuner.EnasTuner' };
}
