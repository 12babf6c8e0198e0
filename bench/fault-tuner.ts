/*
 * The tuner's part of the fault suite (issue 11): the real tuner, started as NNI starts it
 * (`/bin/sh -c "python3 -m nni --exp_params <b64>"` with the tests' stand-in nni package, handed
 * over to dist/tuner/main.js), is SIGKILLed at a seeded random point of a running experiment and
 * started again as `nnictl resume` starts it: NNI_MODE=resume, the same checkpoint directory, and
 * IN → ID → FD (every trial with a FINAL metric) → AD (the trials that were running, re-run) → GE
 * (NNI-PROTOCOL.md a.6). One experiment is killed and resumed `kills` times in a row.
 *
 * After each resume the tuner's first checkpoint (written at its first GE, before its TRs go out)
 * and its first proposals are compared with a reference built here, independently of the tuner's
 * restore code: a controller that loads the checkpoint the kill left on disk, observes the FD
 * rewards that checkpoint had not counted, keeps the AD proposals and proposes as many as GE asks.
 * Equal checkpoints mean equal parameters, Adam moments, pending rewards, update count, baseline
 * and RNG state; equal proposals show the loaded policy samples as the checkpointed one would.
 * Parameter ids are checked for reuse across all lives, and the rewards of the trials that
 * completed before each kill against the resumed history (none lost, none counted twice, none of
 * a failed trial).
 *
 * Trials are played by this script as NNI's manager reports them (ME, EN, GE per poll); the
 * tuner cannot tell them from trial processes. The manager here keeps what NNI's datastore keeps
 * across a restart (trials, their parameters, final metrics and status), nothing of the tuner.
 *
 *   node dist/bench/fault-tuner.js [--kills 20] [--seed 0]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';
import { Random } from '../common/random.js';
import { DEFAULT_SPECS, fromParams, fromTokens, searchSpaceOf, toParams, toTokens, type Params, type SpaceSpec } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { controllerOptions, parseClassArgs } from '../tuner/args.js';
import { CONTROLLER_BACKEND, createController } from '../tuner/controller.js';
import { CHECKPOINT_FILE, type Checkpoint, type RewardRecord } from '../tuner/tuner.js';
import { realPython } from './tuner-startup.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository, whether this runs compiled (dist/bench) or as TypeScript (bench/, under vitest). */
const REPO = basename(dirname(HERE)) === 'dist' ? resolve(HERE, '..', '..') : resolve(HERE, '..');
const FAKE_NNI = join(REPO, 'test', 'fixtures', 'fake-nni');

const SPEC: SpaceSpec = DEFAULT_SPECS.nb201;
const CONCURRENCY = 3;
/** Two rewards per controller update: a few trials make several updates, and kills land between and inside them. */
const NUM_AGGREGATE = 2;
/** Longest wait between the last frame the doomed tuner is sent and its SIGKILL. */
const MAX_KILL_DELAY_MS = 40;
/** Any single wait for the tuner (a start on a busy machine included). */
const TIMEOUT_MS = 60_000;

type TrialStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'USER_CANCELED';

/** A trial as NNI's datastore keeps it across manager restarts. */
interface TrialRecord {
  id: string;
  /** The TR (or AD) content the trial ran: NNI's hyper-parameters of the trial. */
  content: string;
  parameterId: number;
  parameters: Params;
  /** The FINAL metric's value string and its reward, once reported. */
  final?: { value: string; reward: number };
  status: TrialStatus;
}

export interface ResumeCheck {
  kill: number;
  /** Frames of the kill round sent to the tuner before its SIGKILL, of the round's. */
  framesSent: number;
  framesInRound: number;
  delayMs: number;
  /** The checkpoint the kill left: controller updates, rewards in its history, next parameter id. */
  checkpointUpdates: number;
  checkpointRewards: number;
  checkpointNextId: number;
  /** Rewards of completed trials that the checkpoint lacked and the resume's FD gave back. */
  replayed: number;
  /** Trials that were running at the kill, re-run after the resume (AD). */
  recovered: number;
  /** Parameter ids of the resumed tuner's first proposals. */
  resumedIds: number[];
  /** Differences between the resumed tuner's first checkpoint and proposals and the reference; empty when the resume matched. */
  mismatches: string[];
  /** Rewards of the datastore's trials that the resumed history lost, counted twice, or should not have counted. */
  rewardProblems: string[];
  /** Checkpoint temp files left by this kill (killed inside a checkpoint write). */
  strayTempFiles: number;
  /** The resumed history against the datastore: completed trials missing, trials counted twice, failed trials counted. */
  lostRewards: number;
  doubleCounted: number;
  failedCounted: number;
  /** Failed trials in the resumed history whose EN never reached a tuner (FD cannot say they failed). */
  failedUnseenCounted: number;
  /** Resumed tuner: spawn → first proposals. */
  resumeMs: number;
}

export interface TunerFaultFigures {
  kills: number;
  seed: number;
  /** Resumes whose first checkpoint and proposals equal the reference loaded from the kill's checkpoint. */
  matched: number;
  /** Parameter ids proposed more than once over the whole experiment (all lives). */
  idReuse: number;
  /** Completed trials (SUCCEEDED with a FINAL metric) missing from a resumed history. */
  lostRewards: number;
  /** Trials counted more than once in a resumed history. */
  doubleCounted: number;
  /** Trials that ended FAILED, with the tuner told so, but whose reward is in a resumed history. */
  failedCounted: number;
  /** Distinct trials that failed after the kill's FINAL metric reached NNI but whose EN the killed tuner never got, counted from FD. */
  failedUnseen: number;
  strayTempFiles: number;
  replayed: number;
  trials: number;
  /** Tuner exit status after the final TE (0 expected). */
  finalExit: number | null;
  seconds: number;
  resumes: ResumeCheck[];
}

export interface TunerFaultOptions {
  kills: number;
  seed: number;
  log?: (line: string) => void;
}

/** Checks the options and the checkout; one line naming the flag or path. */
function checkOptions(options: TunerFaultOptions): void {
  if (!Number.isInteger(options.kills) || options.kills < 1) throw new Error(`--kills must be an integer ≥ 1, got ${options.kills}`);
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff)
    throw new Error(`--seed must be an integer in [0, 2^32), got ${options.seed}`);
  for (const path of [join(REPO, 'tuner', 'nni_enas_tuner.py'), join(REPO, 'dist', 'tuner', 'main.js'), join(FAKE_NNI, 'nni', '__main__.py')])
    if (!existsSync(path)) throw new Error(`${path} is missing (a built checkout is needed: npm ci && npm run build)`);
}

const TRIAL_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * One life of the tuner: the manager's WebSocket (IN on connect; on ID, FD and AD when resuming,
 * then GE) and the dispatcher process NNI spawns. TRs are recorded in `proposals`.
 */
class TunerLife {
  readonly proposals: { parameterId: number; content: string }[] = [];
  shell: ChildProcess | undefined;
  exited: Promise<number | null> = Promise.resolve(null);
  spawnedAt = 0;
  private stderr = '';
  private socket: WebSocket | null = null;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private waiters: (() => void)[] = [];
  private problem: string | null = null;

  constructor(
    private readonly experiment: { dir: string; python: string; classArgs: object },
    private readonly resume: { imported: unknown[]; recovered: unknown[] } | null,
  ) {
    this.http = createServer((_req, res) => res.writeHead(404).end());
    this.wss = new WebSocketServer({ server: this.http, path: '/tuner' });
  }

  async start(): Promise<void> {
    this.wss.on('connection', (ws) => {
      if (this.socket) {
        ws.close(4001, 'one tuner per life');
        return;
      }
      this.socket = ws;
      ws.on('message', (data) => this.receive(String(data)));
      this.send('IN', JSON.stringify(searchSpaceOf(SPEC)));
    });
    await new Promise<void>((done) => this.http.listen(0, '127.0.0.1', done));
    const port = (this.http.address() as AddressInfo).port;
    const { dir, python, classArgs } = this.experiment;
    const config = { experimentName: 'bench-fault-tuner', trialConcurrency: CONCURRENCY, tuner: { codeDirectory: join(REPO, 'tuner'), className: 'nni_enas_tuner.EnasTuner', classArgs } };
    mkdirSync(join(dir, 'log'), { recursive: true });
    this.spawnedAt = performance.now();
    const shell = spawn('/bin/sh', ['-c', `${python} -m nni --exp_params ${Buffer.from(JSON.stringify(config)).toString('base64')}`], {
      cwd: join(dir, 'log'),
      env: {
        ...process.env,
        PYTHONPATH: [FAKE_NNI, process.env.PYTHONPATH].filter(Boolean).join(':'),
        PYTHONDONTWRITEBYTECODE: '1',
        SDK_PROCESS: 'dispatcher',
        NNI_MODE: this.resume ? 'resume' : 'start',
        NNI_TUNER_COMMAND_CHANNEL: `ws://127.0.0.1:${port}/tuner`,
        NNI_CHECKPOINT_DIRECTORY: join(dir, 'checkpoint'),
        NNI_LOG_DIRECTORY: join(dir, 'log'),
        NNI_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.shell = shell;
    shell.stderr!.on('data', (chunk) => (this.stderr = (this.stderr + String(chunk)).slice(-4000)));
    this.exited = new Promise((done) => shell.on('close', (code) => done(code)));
    void this.exited.then((code) => {
      this.problem ??= `the tuner exited (code ${code})`;
      this.wake();
    });
  }

  send(type: string, content?: string): void {
    this.socket?.send(JSON.stringify(content === undefined ? { type } : { type, content }));
  }

  /** Waits until the tuner has proposed `count` parameters in this life. */
  async proposed(count: number): Promise<void> {
    const deadline = Date.now() + TIMEOUT_MS;
    while (this.proposals.length < count) {
      if (this.problem) throw new Error(`${this.problem} while ${count} proposals were awaited; its stderr ends:\n${this.stderr.slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`no ${count} proposals within ${TIMEOUT_MS / 1000} s; the tuner's stderr ends:\n${this.stderr.slice(-1500)}`);
      await new Promise<void>((wake) => {
        this.waiters.push(wake);
        setTimeout(wake, 1000);
      });
    }
  }

  /**
   * The node process of this life: the PID the tuner logs first thing (the log is appended to
   * across lives), checked to be NNI's shell or its child (dash may or may not exec).
   */
  tunerPid(): number {
    const log = readFileSync(join(this.experiment.dir, 'log', 'nni-enas-tuner.log'), 'utf8');
    const pid = [...log.matchAll(/nni-enas tuner: pid (\d+)/g)].map((m) => Number(m[1])).at(-1);
    const shellPid = this.shell?.pid;
    if (!pid || !shellPid || (pid !== shellPid && !childrenOf(shellPid).includes(pid)))
      throw new Error(`the tuner's logged PID ${pid} is neither NNI's shell ${shellPid} nor its child`);
    return pid;
  }

  /** SIGKILL to the tuner process itself; resolves once NNI's shell has gone with it. */
  async kill(pid: number): Promise<void> {
    this.problem = 'the tuner was killed';
    process.kill(pid, 'SIGKILL');
    await this.exited;
  }

  /** `nnictl stop`: TE, `_bye_`, close 4000; resolves with the tuner's exit status. */
  async terminate(): Promise<number | null> {
    this.problem = 'the tuner was stopped';
    this.send('TE');
    this.socket?.send(JSON.stringify({ type: '_bye_', reason: 'TE command' }));
    this.socket?.close(4000, 'TE command');
    const code = await Promise.race([this.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), TIMEOUT_MS).unref())]);
    if (code === 'timeout') throw new Error(`the tuner did not exit within ${TIMEOUT_MS / 1000} s of TE`);
    return code;
  }

  /** Closes the server; a tuner still alive (only after an error) is killed with its shell. */
  async close(): Promise<void> {
    const shell = this.shell;
    if (shell?.pid && shell.exitCode === null && shell.signalCode === null) {
      for (const pid of [...childrenOf(shell.pid), shell.pid])
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      await this.exited;
    }
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((done) => this.wss.close(() => done()));
    await new Promise<void>((done) => this.http.close(() => done()));
  }

  private receive(text: string): void {
    const { type, content } = JSON.parse(text) as { type: string; content?: string };
    if (type === 'ID') {
      if (this.resume) {
        this.send('FD', JSON.stringify(this.resume.imported));
        this.send('AD', JSON.stringify(this.resume.recovered));
      }
      this.send('GE', String(CONCURRENCY));
    } else if (type === 'TR') {
      this.proposals.push({ parameterId: (JSON.parse(content!) as { parameter_id: number }).parameter_id, content: content! });
    } else if (type === 'ER') {
      this.problem = `the tuner reported ER: ${content}`;
    } else if (type !== '_bye_') {
      this.problem = `the tuner sent an unexpected ${type}`;
    }
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/** The experiment as NNI's manager knows it across restarts, and the trials it plays. */
class Experiment {
  readonly trials = new Map<string, TrialRecord>();
  /** TR contents not yet running (NNI's waitingTrials: lost when the manager stops). */
  waiting: string[] = [];
  life!: TunerLife;
  /** How many of this life's proposals are in `waiting` already. */
  private taken = 0;

  constructor(
    readonly dir: string,
    private readonly python: string,
    readonly classArgs: object,
    private readonly rng: Random,
  ) {}

  async launch(resume: { imported: unknown[]; recovered: unknown[] } | null): Promise<void> {
    this.life = new TunerLife({ dir: this.dir, python: this.python, classArgs: this.classArgs }, resume);
    this.taken = 0;
    await this.life.start();
  }

  /** Moves the life's new TRs into the waiting queue, then starts waiting trials up to the concurrency. */
  private submit(): void {
    for (; this.taken < this.life.proposals.length; this.taken++) this.waiting.push(this.life.proposals[this.taken]!.content);
    let running = this.running().length;
    while (running < CONCURRENCY && this.waiting.length > 0) {
      const content = this.waiting.shift()!;
      const { parameter_id, parameters } = JSON.parse(content) as { parameter_id: number; parameters: Params };
      let id: string;
      do id = Array.from({ length: 5 }, () => TRIAL_ID_ALPHABET[this.rng.int(TRIAL_ID_ALPHABET.length)]).join('');
      while (this.trials.has(id));
      this.trials.set(id, { id, content, parameterId: parameter_id, parameters, status: 'RUNNING' });
      running++;
    }
  }

  running(): TrialRecord[] {
    return [...this.trials.values()].filter((t) => t.status === 'RUNNING');
  }

  /**
   * One poll of NNI's loop, decided at random: each running trial reports a FINAL metric and
   * succeeds (70 %), reports one and then fails (8 %), fails without one (5 %) or keeps running.
   * Returns the frames as the manager sends them (ME as metrics arrive, then EN per ended trial,
   * then GE for the freed slots) and how many TRs that GE asks for. The datastore is updated at once.
   */
  poll(): { frames: string[]; ended: number } {
    this.submit();
    const metrics: string[] = [];
    const ends: string[] = [];
    for (const trial of this.running()) {
      const u = this.rng.next();
      if (u >= 0.83) continue;
      if (u < 0.78) {
        const reward = Math.round((0.1 + 0.8 * this.rng.next()) * 1e4) / 1e4;
        // Trial SDKs report either a number or a dict with "default" (NNI-PROTOCOL b.4).
        const value = JSON.stringify(this.rng.next() < 0.5 ? reward : { default: reward });
        trial.final = { value, reward };
        metrics.push(JSON.stringify({ parameter_id: trial.parameterId, trial_job_id: trial.id, type: 'FINAL', sequence: 0, value }));
      }
      trial.status = u < 0.7 ? 'SUCCEEDED' : 'FAILED';
      ends.push(JSON.stringify({ trial_job_id: trial.id, event: trial.status, hyper_params: trial.content }));
    }
    const frames = [
      ...metrics.map((content) => JSON.stringify({ type: 'ME', content })),
      ...ends.map((content) => JSON.stringify({ type: 'EN', content })),
      ...(ends.length ? [JSON.stringify({ type: 'GE', content: String(ends.length) })] : []),
    ];
    return { frames, ended: ends.length };
  }

  /** A poll the tuner fully answers. */
  async round(): Promise<void> {
    const expected = this.life.proposals.length;
    const { frames, ended } = this.poll();
    for (const frame of frames) this.sendRaw(frame);
    await this.life.proposed(expected + ended);
  }

  sendRaw(frame: string): void {
    const { type, content } = JSON.parse(frame) as { type: string; content?: string };
    this.life.send(type, content);
  }

  /**
   * What `nnictl resume` sends: FD = every trial with a FINAL metric (NNI's exportData, whatever
   * the trial's status), AD = the trials that were still running, which NNI re-runs; those runs
   * are cancelled, their re-runs wait first in the queue.
   */
  resumeFrames(): { imported: { parameter: Params; value: string; trialJobId: string }[]; recovered: { parameter_id: number; parameter_source: string; parameters: Params; parameter_index: number }[] } {
    const imported = [...this.trials.values()].filter((t) => t.final).map((t) => ({ parameter: t.parameters, value: t.final!.value, trialJobId: t.id }));
    const recovered = this.running().map((t) => {
      t.status = 'USER_CANCELED';
      return { parameter_id: t.parameterId, parameter_source: 'resumed', parameters: t.parameters, parameter_index: 0 };
    });
    this.waiting = recovered.map((r) => JSON.stringify(r));
    return { imported, recovered };
  }
}

/** Direct children of a process (Linux /proc); none once it is gone. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const checkpointPath = (dir: string) => join(dir, 'checkpoint', CHECKPOINT_FILE);
const tempFiles = (dir: string) => readdirSync(join(dir, 'checkpoint')).filter((name) => name.endsWith('.tmp'));

/** Where two JSON values differ, as dotted paths (at most a few, for the report). */
function differences(actual: unknown, expected: unknown, path: string, out: string[]): void {
  if (out.length >= 8 || isDeepStrictEqual(actual, expected)) return;
  if (actual && expected && typeof actual === 'object' && typeof expected === 'object' && !Array.isArray(actual) && !Array.isArray(expected)) {
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
    for (const key of keys) differences((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`, out);
    return;
  }
  const show = (v: unknown) => {
    const text = JSON.stringify(v) ?? 'undefined';
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  };
  out.push(`${path}: ${show(actual)} ≠ expected ${show(expected)}`);
}

/**
 * The state a correct resume reaches at its first GE: the kill's checkpoint loaded into a fresh
 * controller, the FD rewards it had not counted observed (trials in its history or discarded list
 * are skipped, NNI-PROTOCOL a.6 replays them all), the AD proposals kept, CONCURRENCY proposed.
 */
function expectedResume(
  before: Checkpoint,
  imported: { parameter: Params; trialJobId: string }[],
  rewards: Map<string, number>,
  recovered: { parameter_id: number; parameters: Params }[],
  classArgs: object,
): { checkpoint: Checkpoint; proposals: { parameter_id: number; parameters: Params }[]; replayed: number } {
  const spec = before.spec;
  const controller = createController(spec, controllerOptions(spec, parseClassArgs(classArgs).controller));
  try {
    controller.load(before.strategy);
    const history: RewardRecord[] = [...before.history];
    const skip = new Set<string>([...before.discardedTrials, ...before.history.flatMap((r) => (r.trialJobId ? [r.trialJobId] : []))]);
    let replayed = 0;
    for (const trial of imported) {
      if (skip.has(trial.trialJobId)) continue;
      const tokens = toTokens(fromParams(spec, trial.parameter), spec);
      const reward = rewards.get(trial.trialJobId)!;
      controller.observe(tokens, reward);
      history.push({ parameterId: null, trialJobId: trial.trialJobId, source: 'trial', tokens, reward });
      replayed++;
    }
    const outstanding = new Map(before.outstanding.map((p) => [p.parameterId, p.tokens]));
    const kept = new Map<number, number[]>();
    let nextParameterId = before.nextParameterId;
    for (const trial of recovered) {
      kept.set(trial.parameter_id, outstanding.get(trial.parameter_id) ?? toTokens(fromParams(spec, trial.parameters), spec));
      nextParameterId = Math.max(nextParameterId, trial.parameter_id + 1);
    }
    const proposals = Array.from({ length: CONCURRENCY }, () => {
      const tokens = controller.propose();
      const id = nextParameterId++;
      kept.set(id, tokens);
      return { parameter_id: id, parameters: toParams(fromTokens(spec, tokens), spec) };
    });
    const checkpoint: Checkpoint = {
      format: before.format,
      spec,
      nextParameterId,
      outstanding: [...kept].map(([parameterId, tokens]) => ({ parameterId, tokens })),
      history,
      discardedTrials: before.discardedTrials,
      strategy: controller.save(),
    };
    return { checkpoint, proposals, replayed };
  } finally {
    controller.dispose();
  }
}

export async function runTunerFaults(options: TunerFaultOptions): Promise<TunerFaultFigures> {
  const log = options.log ?? (() => {});
  checkOptions(options);
  const python = realPython();
  // The reference controller runs here, on the tuner's backend, so that its numbers are the tuner's.
  await setupBackend(CONTROLLER_BACKEND, log);
  const started = performance.now();
  const rng = new Random(options.seed);
  const dir = mkdtempSync(join(tmpdir(), 'nni-enas-fault-tuner-'));
  const classArgs = { seed: options.seed, num_aggregate: NUM_AGGREGATE };
  const experiment = new Experiment(dir, python, classArgs, rng);
  const resumes: ResumeCheck[] = [];
  const allIds: number[] = [];
  /** Trials whose EN the killed tuner never received: NNI's FD lists them with their metric and no status. */
  const endsNeverSeen = new Set<string>();
  let finalExit: number | null = null;
  try {
    await experiment.launch(null);
    await experiment.life.proposed(CONCURRENCY);
    for (let kill = 1; kill <= options.kills; kill++) {
      // 1–3 answered polls, and at least one controller update before the first kill.
      const rounds = 1 + rng.int(3);
      for (let i = 0; i < rounds; i++) await experiment.round();
      while (updatesOf(dir) < 1) await experiment.round();

      // The kill round: a random prefix of one poll's frames reaches the tuner, then SIGKILL after a random delay.
      const pid = experiment.life.tunerPid();
      const { frames } = experiment.poll();
      const framesSent = rng.int(frames.length + 1);
      const delayMs = rng.int(MAX_KILL_DELAY_MS + 1);
      const tempBefore = tempFiles(dir).length;
      for (const frame of frames.slice(0, framesSent)) experiment.sendRaw(frame);
      for (const frame of frames.slice(framesSent)) {
        const { type, content } = JSON.parse(frame) as { type: string; content?: string };
        if (type === 'EN') endsNeverSeen.add((JSON.parse(content!) as { trial_job_id: string }).trial_job_id);
      }
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      await experiment.life.kill(pid);
      allIds.push(...experiment.life.proposals.map((p) => p.parameterId));
      await experiment.life.close();

      // Whole or the bench stops here; the resumed tuner checks it against its schema (ER otherwise).
      let before: Checkpoint;
      try {
        before = JSON.parse(readFileSync(checkpointPath(dir), 'utf8')) as Checkpoint;
      } catch (error) {
        throw new Error(`kill ${kill}: the checkpoint the kill left does not parse: ${(error as Error).message}`);
      }
      const strayTempFiles = tempFiles(dir).length - tempBefore;
      const { imported, recovered } = experiment.resumeFrames();
      const rewards = new Map([...experiment.trials.values()].filter((t) => t.final).map((t) => [t.id, t.final!.reward]));
      const expected = expectedResume(before, imported, rewards, recovered, classArgs);

      await experiment.launch({ imported, recovered });
      await experiment.life.proposed(CONCURRENCY);
      const resumeMs = performance.now() - experiment.life.spawnedAt;
      const after = JSON.parse(readFileSync(checkpointPath(dir), 'utf8')) as Checkpoint;
      const mismatches: string[] = [];
      differences(after, expected.checkpoint, 'checkpoint', mismatches);
      const first = experiment.life.proposals.slice(0, CONCURRENCY).map((p) => {
        const { parameter_id, parameters } = JSON.parse(p.content) as { parameter_id: number; parameters: Params };
        return { parameter_id, parameters };
      });
      differences(first, expected.proposals, 'proposals', mismatches);
      const resumedIds = first.map((p) => p.parameter_id);
      const rewardProblems: string[] = [];
      const accounts = accountRewards(after, experiment.trials, endsNeverSeen, rewardProblems);
      resumes.push({
        kill,
        framesSent,
        framesInRound: frames.length,
        delayMs,
        checkpointUpdates: (before.strategy as { updates: number }).updates,
        checkpointRewards: before.history.length,
        checkpointNextId: before.nextParameterId,
        replayed: expected.replayed,
        recovered: recovered.length,
        resumedIds,
        mismatches,
        rewardProblems,
        strayTempFiles,
        ...accounts,
        resumeMs,
      });
      log(
        `kill ${kill}/${options.kills}: ${framesSent}/${frames.length} frames sent, SIGKILL after ${delayMs} ms; checkpoint had ${before.history.length} rewards, ` +
          `${(before.strategy as { updates: number }).updates} updates, next id ${before.nextParameterId}; FD replayed ${expected.replayed}, AD ${recovered.length}; ` +
          `resumed ids ${resumedIds.join(',')} in ${(resumeMs / 1000).toFixed(1)} s: ${mismatches.length ? `MISMATCH ${mismatches.join('; ')}` : 'matches the checkpoint'}` +
          (rewardProblems.length ? `; ${rewardProblems.join('; ')}` : ''),
      );
    }
    await experiment.round();
    allIds.push(...experiment.life.proposals.map((p) => p.parameterId));
    finalExit = await experiment.life.terminate();
  } finally {
    await experiment.life?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const sum = (key: 'replayed' | 'strayTempFiles' | 'lostRewards' | 'doubleCounted' | 'failedCounted') => resumes.reduce((total, r) => total + r[key], 0);
  return {
    kills: options.kills,
    seed: options.seed,
    matched: resumes.filter((r) => r.mismatches.length === 0).length,
    idReuse: allIds.length - new Set(allIds).size,
    lostRewards: sum('lostRewards'),
    doubleCounted: sum('doubleCounted'),
    failedCounted: sum('failedCounted'),
    failedUnseen: [...endsNeverSeen].filter((id) => experiment.trials.get(id)?.status === 'FAILED' && experiment.trials.get(id)?.final).length,
    strayTempFiles: sum('strayTempFiles'),
    replayed: sum('replayed'),
    trials: experiment.trials.size,
    finalExit,
    seconds: (performance.now() - started) / 1000,
    resumes,
  };
}

function updatesOf(dir: string): number {
  return ((JSON.parse(readFileSync(checkpointPath(dir), 'utf8')) as Checkpoint).strategy as { updates: number }).updates;
}

/**
 * The resumed history against the datastore: every trial that completed (SUCCEEDED, FINAL metric)
 * must be in it once, and no trial that failed. Each problem is also described in `problems`.
 */
function accountRewards(
  after: Checkpoint,
  trials: Map<string, TrialRecord>,
  endsNeverSeen: ReadonlySet<string>,
  problems: string[],
): Pick<ResumeCheck, 'lostRewards' | 'doubleCounted' | 'failedCounted' | 'failedUnseenCounted'> {
  const counted = after.history.flatMap((r) => (r.trialJobId ? [r.trialJobId] : []));
  const seen = new Set(counted);
  const completed = [...trials.values()].filter((t) => t.status === 'SUCCEEDED' && t.final);
  const lost = completed.filter((t) => !seen.has(t.id));
  // A failure the tuner never heard of cannot be told apart from a success in FD: counted, but not a fault of the tuner.
  const failedAll = counted.filter((id) => trials.get(id)?.status === 'FAILED');
  const failed = failedAll.filter((id) => !endsNeverSeen.has(id));
  for (const t of lost) problems.push(`the reward of completed trial ${t.id} (parameter ${t.parameterId}) is lost`);
  for (const id of failed) problems.push(`the reward of failed trial ${id} was counted`);
  return { lostRewards: lost.length, doubleCounted: counted.length - seen.size, failedCounted: failed.length, failedUnseenCounted: failedAll.length - failed.length };
}

export function formatTunerFaults(figures: TunerFaultFigures): string {
  const lines = [
    '| kills | resumes matching the checkpoint | parameter ids reused | completed rewards lost | counted twice | failed trials counted | failed trials the killed tuner never heard of, counted from FD | stray temp files | rewards replayed from FD | trials | tuner exit after TE | time |',
    '| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
    `| ${figures.kills} | ${figures.matched} of ${figures.kills} | ${figures.idReuse} | ${figures.lostRewards} | ${figures.doubleCounted} | ${figures.failedCounted} | ${figures.failedUnseen} | ${figures.strayTempFiles} | ${figures.replayed} | ${figures.trials} | ${figures.finalExit ?? 'none'} | ${figures.seconds.toFixed(1)} s |`,
    '',
    '| kill | frames sent / in round | SIGKILL delay, ms | checkpoint: updates, rewards, next id | FD replayed | AD re-run | resumed ids | resume, s | result |',
    '| --: | :-- | --: | :-- | --: | --: | :-- | --: | :-- |',
  ];
  for (const r of figures.resumes)
    lines.push(
      `| ${r.kill} | ${r.framesSent} / ${r.framesInRound} | ${r.delayMs} | ${r.checkpointUpdates}, ${r.checkpointRewards}, ${r.checkpointNextId} | ${r.replayed} | ${r.recovered} | ${r.resumedIds.join(', ')} | ${(r.resumeMs / 1000).toFixed(1)} | ${[...r.mismatches, ...r.rewardProblems].join('; ') || 'match'} |`,
    );
  return lines.join('\n');
}

async function main(): Promise<void> {
  let kills: number;
  let seed: number;
  try {
    const { values } = parseArgs({ options: { kills: { type: 'string', default: '20' }, seed: { type: 'string', default: '0' } }, strict: true });
    kills = Number(values.kills);
    seed = Number(values.seed);
    checkOptions({ kills, seed });
  } catch (error) {
    console.error(`fault-tuner: ${(error as Error).message}`);
    process.exit(2);
  }
  console.log(`tuner SIGKILL + resume: ${kills} kills, seed ${seed}, ${SPEC.space} space, concurrency ${CONCURRENCY}, num_aggregate ${NUM_AGGREGATE}`);
  const figures = await runTunerFaults({ kills, seed, log: (line) => console.log(line) });
  console.log(`\n${formatTunerFaults(figures)}`);
  const bad = figures.matched < figures.kills || figures.idReuse || figures.lostRewards || figures.doubleCounted || figures.failedCounted || figures.finalExit !== 0;
  process.exitCode = bad ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
