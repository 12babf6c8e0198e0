/*
 * Trial processes for the fake manager (test/fake-nni-manager.ts), run as NNI 3.0's local
 * training service runs them (NNI-PROTOCOL.md b.1–b.4): `/bin/bash -c <trialCommand>` in
 * trialCodeDirectory, stdout/stderr into <exp>/environments/local-env/trials/<id>/trial.{stdout,stderr},
 * the NNI_* environment, the v3 HTTP trial channel (test/fake-trial-channel.ts, one parameter
 * FIFO as V3asV1), every metric forwarded verbatim as ME, and NNI's 0.5 s poll loop: submit
 * waiting trials, notice exits, send EN (exit 0 SUCCEEDED, else FAILED; killed USER_CANCELED)
 * and GE. Kill is SIGINT to the bash process, then SIGKILL after 5 s.
 *
 *   const runner = new FakeTrialRunner({ trialCommand, trialCodeDirectory });
 *   const manager = new FakeNniManager({ …, onTrialSubmitted: (trial) => runner.spawn(trial) });
 *   await manager.start(); await runner.start(manager);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { FakeNniManager, TrialEvent, TrialJob } from './fake-nni-manager.js';
import { FakeTrialChannelServer } from './fake-trial-channel.js';

export interface FakeTrialRunnerOptions {
  trialCommand: string;
  trialCodeDirectory: string;
  /** NNI_EXP_ID; default: the name of the manager's experiment directory. */
  experimentId?: string;
  /** Variables added to (or replacing) the manager's environment. */
  env?: Record<string, string>;
  /** NNI's poll period (0.5 s in local mode). */
  pollMs?: number;
  /** Time between SIGINT and SIGKILL (NNI: 5 s). */
  killGraceMs?: number;
}

export interface SpawnedTrial {
  job: TrialJob;
  /** <exp>/environments/local-env/trials/<id>: NNI_SYS_DIR and NNI_OUTPUT_DIR. */
  dir: string;
  process: ChildProcess;
  pid: number;
  env: Record<string, string>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  killed: boolean;
  /** EN has been sent for it. */
  reported: boolean;
  exited: Promise<void>;
}

export class FakeTrialRunner {
  readonly channel: FakeTrialChannelServer;
  readonly trials = new Map<string, SpawnedTrial>();
  /** Things real NNI would treat as fatal (e.g. a metric whose trial_job_id is not the sender's). */
  readonly errors: string[] = [];
  private manager: FakeNniManager | undefined;
  private poll: NodeJS.Timeout | undefined;
  private forwarder: NodeJS.Timeout | undefined;
  private forwarded = 0;

  constructor(private readonly options: FakeTrialRunnerOptions) {
    this.channel = new FakeTrialChannelServer();
  }

  /** Serves the trial channel and starts the poll loop for `manager`. */
  async start(manager: FakeNniManager): Promise<void> {
    this.manager = manager;
    await this.channel.start();
    this.poll = setInterval(() => this.pollOnce(), this.options.pollMs ?? 500);
    // NNI forwards a metric as soon as the trial PUTs it; 50 ms is close enough and keeps order.
    this.forwarder = setInterval(() => this.forwardMetrics(), 50);
  }

  /** The manager's onTrialSubmitted hook: start the process for `job`. */
  spawn(job: TrialJob): void {
    const manager = this.manager;
    if (!manager) throw new Error('FakeTrialRunner.start(manager) first');
    // The trial's parameters move from the manager's FIFO to the HTTP channel's: same order, one queue.
    const parameter = manager.parameterQueue.shift();
    if (parameter !== job.hyperParams) throw new Error(`parameter FIFO out of step at trial ${job.id}`);
    this.channel.enqueueParameter(parameter);
    const dir = join(manager.experimentDir, 'environments', 'local-env', 'trials', job.id);
    mkdirSync(dir, { recursive: true });
    const env: Record<string, string> = {
      NNI_PLATFORM: 'local',
      NNI_EXP_ID: this.options.experimentId ?? basename(manager.experimentDir),
      NNI_TRIAL_JOB_ID: job.id,
      NNI_TRIAL_SEQ_ID: String(job.sequenceId),
      NNI_SYS_DIR: dir,
      NNI_OUTPUT_DIR: dir,
      NNI_CODE_DIR: this.options.trialCodeDirectory,
      NNI_TRIAL_COMMAND_CHANNEL: this.channel.urlFor(job.id),
    };
    const stdout = openSync(join(dir, 'trial.stdout'), 'w');
    const stderr = openSync(join(dir, 'trial.stderr'), 'w');
    let child: ChildProcess;
    try {
      child = spawn('/bin/bash', ['-c', this.options.trialCommand], {
        cwd: this.options.trialCodeDirectory,
        env: { ...process.env, ...env, ...this.options.env },
        stdio: ['ignore', stdout, stderr],
      });
    } finally {
      closeSync(stdout);
      closeSync(stderr);
    }
    const trial: SpawnedTrial = { job, dir, process: child, pid: child.pid!, env, killed: false, reported: false, exited: Promise.resolve() };
    trial.exited = new Promise((done) =>
      child.on('exit', (code, signal) => {
        trial.exit = { code, signal };
        done();
      }),
    );
    this.trials.set(job.id, trial);
  }

  /** NNI's kill: SIGINT to the shell, SIGKILL after the grace period; the trial ends USER_CANCELED. */
  async kill(trialId: string): Promise<void> {
    const trial = this.trials.get(trialId);
    if (!trial || trial.exit) return;
    trial.killed = true;
    trial.process.kill('SIGINT');
    const timer = setTimeout(() => trial.exit || trial.process.kill('SIGKILL'), this.options.killGraceMs ?? 5000);
    await trial.exited;
    clearTimeout(timer);
  }

  /** Resolves once `test` holds, checking every 100 ms; rejects after `timeoutMs` with what is running. */
  async until(test: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      if (Date.now() > deadline) {
        const states = [...this.trials.values()].map((t) => `${t.job.id}:${t.exit ? `exit ${t.exit.code ?? t.exit.signal}` : 'running'}`);
        throw new Error(`timed out after ${timeoutMs} ms; manager ${this.manager?.status}, trials ${states.join(' ') || 'none'}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Stops the loop, kills what still runs (as `nnictl stop` does) and closes the channel. */
  async stop(): Promise<void> {
    clearInterval(this.poll);
    clearInterval(this.forwarder);
    await Promise.all([...this.trials.keys()].map((id) => this.kill(id)));
    await this.channel.stop();
  }

  private forwardMetrics(): void {
    const manager = this.manager!;
    for (; this.forwarded < this.channel.metrics.length; this.forwarded++) {
      const { trialId, metric } = this.channel.metrics[this.forwarded]!;
      let sender: unknown;
      try {
        sender = (JSON.parse(metric) as { trial_job_id?: unknown }).trial_job_id;
      } catch {
        sender = undefined;
      }
      // NNI's datastore asserts this; a mismatch puts the experiment in ERROR.
      if (sender !== trialId) this.errors.push(`trial ${trialId} sent a metric for ${JSON.stringify(sender)}: ${metric}`);
      else manager.forwardMetric(trialId, metric);
    }
  }

  /** One round of NNI's loop: metrics out, ended trials reported (EN, then GE), waiting trials submitted. */
  private pollOnce(): void {
    const manager = this.manager!;
    this.forwardMetrics();
    const ended = [...this.trials.values()].filter((t) => t.exit && !t.reported);
    if (ended.length) {
      const ends = ended.map((t) => {
        t.reported = true;
        this.channel.closeTrial(t.job.id);
        const event: TrialEvent = t.killed ? 'USER_CANCELED' : t.exit!.code === 0 ? 'SUCCEEDED' : 'FAILED';
        return { trialId: t.job.id, event };
      });
      if (manager.status !== 'STOPPED') manager.endTrials(ends);
    }
    if (manager.status === 'RUNNING' || manager.status === 'TUNER_NO_MORE_TRIAL') manager.submitTrials();
  }
}
