/*
 * The tuner as NNI starts it: `/bin/sh -c "python3 -m nni --exp_params <b64>"` (test/fixtures/
 * fake-nni plays `nni`), which imports tuner/nni_enas_tuner.py, which execs the compiled entry
 * point dist/tuner/main.js with the real ENAS controller. Needs `npx tsc -p .` first (`npm test`
 * does it). Also reports the launch → ID and GE → TR latencies.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SPECS, fromParams, searchSpaceOf } from '../search-spaces/spaces.js';
import { defaultTuner, FakeNniManager, type FakeManagerOptions, type LaunchedTuner } from './fake-nni-manager.js';

const SPEC = DEFAULT_SPECS.micro;
const ENTRY = join(defaultTuner().codeDirectory, '..', 'dist', 'tuner', 'main.js');

const managers: FakeNniManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
});

beforeAll(() => {
  if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: run \`npx tsc -p .\` first`);
});

async function manager(options: Partial<FakeManagerOptions> = {}): Promise<FakeNniManager> {
  const m = new FakeNniManager({ searchSpace: searchSpaceOf(SPEC), trialConcurrency: 2, ...options });
  await m.start();
  managers.push(m);
  return m;
}

/** Waits for `frames`, failing at once with the tuner's output if it exits first. */
async function tunerSends<T>(tuner: LaunchedTuner, frames: Promise<T>): Promise<T> {
  const early = tuner.exited.then(({ code }) => {
    throw new Error(`tuner exited (code ${code}) before sending them; stderr:\n${tuner.stderr()}`);
  });
  early.catch(() => {}); // only reported when it wins the race
  return Promise.race([frames, early]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Parent PID from /proc/<pid>/stat (the field after the parenthesised command name). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('tuner launcher', () => {
  it('turns the python process NNI started into node with the same PID, reaches ID, proposes, and leaves no process after TE', async () => {
    const m = await manager({ classArgs: { seed: 5, num_aggregate: 2 } });
    const started = performance.now();
    const tuner = m.launchTuner();
    const [id] = await tunerSends(tuner, m.waitForTuner('ID'));
    const launchToId = id!.at - started;

    const pythonPid = Number(/fake nni: pid (\d+) imports nni_enas_tuner\.EnasTuner/.exec(tuner.stderr())?.[1]);
    const log = readFileSync(join(m.experimentDir, 'log', 'nni-enas-tuner.log'), 'utf8');
    const nodePid = Number(/nni-enas tuner: pid (\d+)/.exec(log)?.[1]);
    expect(pythonPid).toBeGreaterThan(0);
    expect(nodePid).toBe(pythonPid);
    expect(readlinkSync(`/proc/${nodePid}/exe`)).toMatch(/\/node$/);
    // Connected first, then TensorFlow.js and the controller loaded (NNI allows 10 s to connect).
    const connected = log.indexOf(') connected to ws://');
    expect(connected).toBeGreaterThan(0);
    expect(log.indexOf(') controller loaded (TensorFlow.js ')).toBeGreaterThan(connected);
    // NNI tracks the shell; the tuner is the shell itself or its child (dash does not exec here).
    expect(nodePid === tuner.shell.pid || parentOf(nodePid) === tuner.shell.pid).toBe(true);

    const first = await tunerSends(tuner, m.waitForTuner('TR', 2));
    for (const tr of first) expect(() => fromParams(SPEC, JSON.parse(tr.content!).parameters)).not.toThrow();
    // Two rewards make one controller update (num_aggregate 2), then the next GE is answered.
    const trials = m.submitTrials().map((t) => t.id);
    trials.forEach((trialId, i) => {
      m.requestParameter(trialId);
      m.reportMetric(trialId, 'FINAL', { default: 0.5 + 0.1 * i });
    });
    m.endTrials(trials.map((trialId) => ({ trialId, event: 'SUCCEEDED' })));
    const trs = await tunerSends(tuner, m.waitForTuner('TR', 4));
    const ge = m.frames.filter((f) => f.type === 'GE');
    const geToTr = [first[1]!.at - ge[0]!.at, trs[3]!.at - ge[1]!.at];
    expect(readFileSync(join(m.experimentDir, 'log', 'nni-enas-tuner.log'), 'utf8')).toContain('policy updated');
    expect(existsSync(join(m.experimentDir, 'checkpoint', 'nni-enas-tuner.json'))).toBe(true);

    await m.terminate();
    expect(await tuner.exited).toEqual({ code: 0, signal: null });
    expect(alive(nodePid)).toBe(false);
    expect(alive(tuner.shell.pid!)).toBe(false);
    console.log(
      `launch → ID ${launchToId.toFixed(0)} ms; GE 2 → 2nd TR ${geToTr[0]!.toFixed(1)} ms, ` +
        `after an update GE 2 → 2nd TR ${geToTr[1]!.toFixed(1)} ms (micro space, real controller)`,
    );
  });

  it('reports bad classArgs with ER naming each field after IN, sends nothing before, and exits non-zero', async () => {
    const m = await manager({ classArgs: { lstm_size: 0, learning_rat: 0.1, learning_rate: '1e-3', policy: 'greedy' } });
    const tuner = m.launchTuner();
    const [er] = await tunerSends(tuner, m.waitForTuner('ER'));
    expect((await tuner.exited).code).toBe(1);
    expect(m.fromTuner().map((f) => f.type)).toEqual(['ER', '_bye_']);
    expect(m.frames[0]!.type).toBe('IN');
    for (const field of ['lstm_size', 'learning_rat', 'learning_rate', 'policy']) expect(er!.content).toContain(`"${field}"`);
    expect(er!.content).toContain('write it with a decimal point (e.g. 1.0e-3)');
    expect(m.status).toBe('ERROR');
  });

  it('prints one clear line and exits 1 when node cannot be found', async () => {
    const m = await manager();
    // The real interpreter, so that PATH can be emptied of node (python3 may be a pyenv shim).
    const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    const missing = m.launchTuner({ python, env: { PATH: '/nonexistent', NNI_ENAS_NODE: '' } });
    expect((await missing.exited).code).toBe(1);
    expect(missing.stderr().trim().split('\n').at(-1)).toBe(
      'nni-enas tuner: node not found: install Node.js >= 20 on PATH or set NNI_ENAS_NODE to its path',
    );
    const wrong = m.launchTuner({ env: { NNI_ENAS_NODE: '/nonexistent/node' } });
    expect((await wrong.exited).code).toBe(1);
    expect(wrong.stderr().trim().split('\n').at(-1)).toMatch(/^nni-enas tuner: cannot run node \(\/nonexistent\/node\): /);
    expect(m.connections).toBe(0);
  });

  it('accepts the `-m nni --exp_params` argv of a --python-interpreter wrapper', async () => {
    const m = await manager({ trialConcurrency: 1 });
    const node = spawn(process.execPath, [ENTRY, '-m', 'nni', '--exp_params', m.expParams()], {
      env: { ...process.env, ...m.env() },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((done) => node.on('close', done));
    await m.waitForTuner('TR', 1);
    await m.terminate();
    expect(await exited).toBe(0);
  });
});
