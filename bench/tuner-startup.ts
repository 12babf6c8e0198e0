/*
 * `nni-enas bench startup`: how long the tuner takes to connect. NNI 3.0 fails the experiment when
 * the tuner has not opened its WebSocket within 10 s of being spawned (NNI-PROTOCOL.md a.1). Each
 * start spawns the tuner as NNI does, `/bin/sh -c "python3 -m nni --exp_params <b64>"` with the
 * tests' stand-in nni package (test/fixtures/fake-nni), which hands over to node through
 * tuner/nni_enas_tuner.py; a minimal manager here times spawn → connected and spawn → ID (the
 * controller loaded and answering IN), then stops the tuner with TE. The starts run idle and with
 * the machine oversubscribed by busy-loop processes that this script starts and always kills.
 * Several checkouts (e.g. before and after a change) take turns start by start, so that a
 * background load that changes over the run weighs on all of them alike.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { DEFAULT_SPECS, searchSpaceOf } from '../search-spaces/spaces.js';
import type { BenchRow } from './supernet.js';
import { median } from './stats.js';

/** The checkout this script belongs to (dist/bench → the repository). */
export const THIS_REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FAKE_NNI = join(THIS_REPO, 'test', 'fixtures', 'fake-nni');
/** Far beyond NNI's 10 s: a slow start is measured, not cut off. */
const START_TIMEOUT_MS = 120_000;

export interface TunerStartupOptions {
  /** Starts per condition. */
  starts: number;
  /** Busy-loop processes of the oversubscribed condition (0: idle only). */
  busy: number;
  /** The checkouts whose tuner/nni_enas_tuner.py and dist/tuner/main.js are started, in turn. */
  repos: string[];
  python: string;
  log: (line: string) => void;
}

export interface StartupCondition {
  repo: string;
  name: string;
  busy: number;
  /** 1-minute load average just before the starts and just after them. */
  loadBefore: number;
  loadAfter: number;
  connectedMs: number[];
  readyMs: number[];
}

/**
 * The interpreter as NNI names it: nnictl passes its own `sys.executable`, an absolute path, so a
 * shim on PATH (pyenv's is a bash script that starts several processes) is not what NNI runs.
 */
export function realPython(python = 'python3'): string {
  try {
    return execFileSync(python, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  } catch (error) {
    throw new Error(`--python ${python}: cannot run it (${(error as Error).message.split('\n')[0]})`);
  }
}

/** Five busy loops per core: the "oversubscribed 5×" on the 2-core machine is 10. */
export const DEFAULT_BUSY = 5 * availableParallelism();

/** Checks the checkout before anything is started; one line naming the path. */
export function checkTunerCheckout(repo: string): void {
  for (const path of [join(repo, 'tuner', 'nni_enas_tuner.py'), join(repo, 'dist', 'tuner', 'main.js')])
    if (!existsSync(path)) throw new Error(`--repo ${repo}: ${path} is missing (a built checkout of nni-enas is needed: npm ci && npm run build)`);
  if (!existsSync(join(FAKE_NNI, 'nni', '__main__.py'))) throw new Error(`${FAKE_NNI}: the stand-in nni package is missing`);
}

export async function benchTunerStartup(options: TunerStartupOptions): Promise<StartupCondition[]> {
  for (const repo of options.repos) checkTunerCheckout(repo);
  const conditions: StartupCondition[] = [];
  for (const busy of options.busy > 0 ? [0, options.busy] : [0]) {
    const name = busy === 0 ? 'idle' : `${busy} busy loops on ${availableParallelism()} cores`;
    const loops = startBusyLoops(busy);
    try {
      // Let the loops reach the run queue before the first start.
      if (busy > 0) await new Promise((r) => setTimeout(r, 2000));
      const loadBefore = loadavg()[0]!;
      const runs = options.repos.map((repo) => ({ repo, connectedMs: [] as number[], readyMs: [] as number[] }));
      for (let i = 0; i < options.starts; i++)
        for (const run of runs) {
          const start = await startTuner(run.repo, options.python);
          run.connectedMs.push(Math.round(start.connectedMs));
          run.readyMs.push(Math.round(start.readyMs));
          options.log(`${name}, ${run.repo}: start ${i + 1}/${options.starts}: connected ${start.connectedMs.toFixed(0)} ms, ID ${start.readyMs.toFixed(0)} ms`);
        }
      const loadAfter = loadavg()[0]!;
      for (const run of runs) conditions.push({ ...run, name, busy, loadBefore, loadAfter });
    } finally {
      loops.stop();
    }
  }
  return conditions;
}

const range = (values: readonly number[]) =>
  `${Math.min(...values).toFixed(0)} / ${median(values).toFixed(0)} / ${Math.max(...values).toFixed(0)}`;

export function formatStartup(conditions: readonly StartupCondition[]): string {
  const lines = [
    '| tuner | condition | starts | 1-min load before → after | spawn → connected, ms (min / median / max) | spawn → ID, ms (min / median / max) |',
    '| :-- | :-- | --: | :-- | :-- | :-- |',
  ];
  for (const c of conditions)
    lines.push(`| ${c.repo} | ${c.name} | ${c.connectedMs.length} | ${c.loadBefore.toFixed(2)} → ${c.loadAfter.toFixed(2)} | ${range(c.connectedMs)} | ${range(c.readyMs)} |`);
  return lines.join('\n');
}

/** `bench all` rows: the medians, with min–max and the load in the implementation column. */
export function startupRows(conditions: readonly StartupCondition[]): BenchRow[] {
  return conditions.flatMap((c) => {
    const context = `python3 -m nni → node, ${c.name}, load ${c.loadBefore.toFixed(1)}`;
    const row = (what: string, values: number[]): BenchRow => ({
      what: `tuner spawn → ${what}, median of ${values.length}`,
      implementation: `${context}; min ${Math.min(...values).toFixed(0)}, max ${Math.max(...values).toFixed(0)}`,
      value: Math.round(median(values)),
      unit: 'ms',
    });
    return [row('connected', c.connectedMs), row('ID', c.readyMs)];
  });
}

interface BusyLoops {
  stop(): void;
}

/** Processes that spin until killed; killed on stop(), and on exit or Ctrl-C if stop() is never reached. */
function startBusyLoops(count: number): BusyLoops {
  const children: ChildProcess[] = Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' }));
  const stop = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const interrupted = () => {
    stop();
    process.exit(130);
  };
  process.on('exit', stop);
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  return {
    stop() {
      stop();
      process.off('exit', stop);
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
    },
  };
}

/** SIGKILLs a process and its descendants (a stuck tuner is the shell's child). */
function killTree(pid: number): void {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // gone, or no /proc: the process itself is still killed below
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  for (const child of children) killTree(child);
}

/** The experiment config NNI passes in --exp_params, as much of it as the launcher and the tuner read. */
function expParams(repo: string): string {
  const tuner = { codeDirectory: join(repo, 'tuner'), className: 'nni_enas_tuner.EnasTuner', classArgs: {} };
  return Buffer.from(JSON.stringify({ experimentName: 'bench-startup', trialConcurrency: 1, tuner })).toString('base64');
}

/** One start: spawn → connection, then IN → ID, then TE; resolves once the tuner has exited 0. */
async function startTuner(repo: string, python: string): Promise<{ connectedMs: number; readyMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'nni-enas-bench-startup-'));
  const http = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server: http, path: '/tuner' });
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
  const port = (http.address() as AddressInfo).port;
  let shell: ChildProcess | undefined;
  try {
    let stderr = '';
    let spawnedAt = 0;
    const times = new Promise<{ connectedMs: number; readyMs: number }>((resolveTimes, reject) => {
      let connectedAt = 0;
      wss.once('connection', (ws) => {
        connectedAt = performance.now();
        ws.on('message', (data) => {
          if (!String(data).startsWith('{"type":"ID"')) return reject(new Error(`the tuner answered IN with ${String(data).slice(0, 200)}`));
          resolveTimes({ connectedMs: connectedAt - spawnedAt, readyMs: performance.now() - spawnedAt });
          // NNI's stop: TE, `_bye_`, close 4000.
          ws.send(JSON.stringify({ type: 'TE' }));
          ws.send(JSON.stringify({ type: '_bye_', reason: 'TE command' }));
          ws.close(4000, 'TE command');
        });
        ws.send(JSON.stringify({ type: 'IN', content: JSON.stringify(searchSpaceOf(DEFAULT_SPECS.micro)) }));
      });
      setTimeout(() => reject(new Error(`no ${connectedAt ? 'ID' : 'connection'} within ${START_TIMEOUT_MS / 1000} s; stderr: ${stderr.slice(-500)}`)), START_TIMEOUT_MS).unref();
    });
    // A start that fails or times out after the race below is decided is already reported.
    times.catch(() => {});
    spawnedAt = performance.now();
    shell = spawn('/bin/sh', ['-c', `${python} -m nni --exp_params ${expParams(repo)}`], {
      // Not detached: in the same session, hence the same scheduler autogroup, as the busy loops
      // (in a session of its own the kernel would shield it from them).
      cwd: dir,
      env: {
        ...process.env,
        PYTHONPATH: [FAKE_NNI, process.env.PYTHONPATH].filter(Boolean).join(':'),
        PYTHONDONTWRITEBYTECODE: '1',
        SDK_PROCESS: 'dispatcher',
        NNI_MODE: 'start',
        NNI_TUNER_COMMAND_CHANNEL: `ws://127.0.0.1:${port}/tuner`,
        NNI_CHECKPOINT_DIRECTORY: join(dir, 'checkpoint'),
        NNI_LOG_DIRECTORY: join(dir, 'log'),
        NNI_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    shell.stderr!.on('data', (chunk) => (stderr += String(chunk)));
    const exited = new Promise<number | null>((done) => shell!.on('close', (code) => done(code)));
    const result = await Promise.race([
      times,
      exited.then((code) => {
        throw new Error(`the tuner exited (code ${code}) before answering IN; stderr: ${stderr.slice(-500)}`);
      }),
    ]);
    const code = await exited;
    if (code !== 0) throw new Error(`the tuner exited with code ${code} after TE; stderr: ${stderr.slice(-500)}`);
    return result;
  } finally {
    if (shell?.pid && shell.exitCode === null && shell.signalCode === null) killTree(shell.pid);
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((done) => wss.close(() => done()));
    await new Promise<void>((done) => http.close(() => done()));
    rmSync(dir, { recursive: true, force: true });
  }
}
