import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  commitUpdate,
  initStore,
  loadStore,
  LOCK_FILE,
  MANIFEST_FILE,
  readStoreManifest,
  WeightStoreError,
  withStoreLock,
  type StoreTensor,
  type StoreTensors,
} from '../trial/store.js';
import { writeFileAtomic } from '../common/files.js';
import { assignModelState, readModelState } from '../trial/store-tf.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'test', 'fixtures');
let scratch: string;
let dirCount = 0;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'nni-enas-store-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function freshDir(): string {
  return join(scratch, `store-${dirCount++}`);
}

function floats(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

function bytesOf(data: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Bit-for-bit equality of two tensor sets, so -0 and NaN payloads count. */
function expectBitExact(actual: StoreTensors, expected: StoreTensors): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [name, tensor] of expected) {
    const got = actual.get(name)!;
    expect(got.shape, name).toEqual(tensor.shape);
    expect(got.data.constructor, name).toBe(tensor.data.constructor);
    expect(Buffer.from(bytesOf(got.data)).equals(Buffer.from(bytesOf(tensor.data))), name).toBe(true);
  }
}

function sampleTensors(): Map<string, StoreTensor> {
  const special = floats([
    0x00000000, // +0
    0x80000000, // -0
    0x7fc00001, // quiet NaN with a payload
    0xffc12345, // negative quiet NaN with a payload
    0x7f800001, // signalling NaN
    0x7f800000, // +Infinity
    0xff800000, // -Infinity
    0x00000001, // smallest subnormal
    0x807fffff, // largest negative subnormal
    0x7f7fffff, // largest finite
  ]);
  return new Map<string, StoreTensor>([
    ['conv/kernel', { shape: [2, 5], data: special }],
    ['bn/steps', { shape: [5], data: new Int32Array([2147483647, -2147483648, 0, -1, 12345]) }],
    ['lr/scalar', { shape: [], data: new Float32Array([0.1]) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
    ['dense/bias', { shape: [3], data: new Float32Array([1.5, -2.25, 3]) }],
  ]);
}

function dataFileOf(dir: string): string {
  return join(dir, readStoreManifest(dir).dataFile);
}

function rewriteManifest(dir: string, edit: (manifest: Record<string, unknown>) => void): void {
  const path = join(dir, MANIFEST_FILE);
  const manifest = JSON.parse(readFileSync(path, 'utf8'));
  edit(manifest);
  writeFileSync(path, JSON.stringify(manifest));
}

function addTo(tensors: StoreTensors, floatDelta: number, intDelta: number): Map<string, StoreTensor> {
  const out = new Map<string, StoreTensor>();
  for (const [name, { shape, data }] of tensors) {
    const delta = data instanceof Float32Array ? floatDelta : intDelta;
    out.set(name, { shape, data: data.map((v) => v + delta) });
  }
  return out;
}

describe('weight store on disk', () => {
  it('round-trips every bit, keeps meta and writes a readable manifest', async () => {
    const dir = freshDir();
    const tensors = sampleTensors();
    const meta = { space: { space: 'macro', layers: 12, ops: ['conv3x3', 'maxpool'] }, model: { channels: 36 } };
    expect(await initStore(dir, tensors, meta)).toEqual({ version: 1, created: true });

    const loaded = loadStore(dir);
    expect(loaded.version).toBe(1);
    expect(loaded.meta).toEqual(meta);
    expectBitExact(loaded.tensors, tensors);

    const manifest = readStoreManifest(dir);
    expect(manifest).toMatchObject({ format: 'nni-enas-weights', formatVersion: 1, version: 1, dataBytes: 4 * 19 });
    expect(manifest.tensors[1]).toEqual({ name: 'bn/steps', dtype: 'int32', shape: [5], offset: 40, length: 20 });
    expect(manifest.sha256).toBe(createHash('sha256').update(readFileSync(dataFileOf(dir))).digest('hex'));
    expect(Number.isNaN(Date.parse(manifest.createdAt))).toBe(false);
    expect(readFileSync(join(dir, MANIFEST_FILE), 'utf8')).toContain('\n  "version": 1,');
  });

  it('keeps an existing store of the same layout, refuses another layout unless overwriting', async () => {
    const dir = freshDir();
    const tensors = sampleTensors();
    await initStore(dir, tensors, { run: 1 });
    expect(await initStore(dir, addTo(tensors, 1, 1), { run: 2 })).toEqual({ version: 1, created: false });
    expectBitExact(loadStore(dir).tensors, tensors);

    const reshaped = new Map(tensors).set('dense/bias', { shape: [1, 3], data: new Float32Array(3) });
    await expect(initStore(dir, reshaped, {})).rejects.toThrow(
      `${join(dir, MANIFEST_FILE)}: store exists with a different layout: tensor "dense/bias" has shape [1,3]`,
    );
    expect(await initStore(dir, reshaped, { run: 3 }, { overwrite: true })).toEqual({ version: 2, created: true });
    expect(loadStore(dir)).toMatchObject({ version: 2, meta: { run: 3 } });
  });

  it('merges a commit onto a concurrent one: newest + (trained − base)', async () => {
    const dir = freshDir();
    const base = new Map<string, StoreTensor>([
      ['w', { shape: [4], data: new Float32Array([0.1, -3, 1e-3, 7]) }],
      ['count', { shape: [2], data: new Int32Array([2147483000, -5]) }],
    ]);
    await initStore(dir, base, {});
    const first = loadStore(dir);
    const second = loadStore(dir);

    const trainedFirst = new Map<string, StoreTensor>([
      ['w', { shape: [4], data: new Float32Array([0.2, -2.5, 2e-3, 7.25]) }],
      ['count', { shape: [2], data: new Int32Array([2147483600, -4]) }],
    ]);
    expect(await commitUpdate(dir, first.version, first.tensors, trainedFirst)).toEqual({ version: 2, concurrentCommits: 0 });

    const trainedSecond = new Map<string, StoreTensor>([
      ['w', { shape: [4], data: new Float32Array([0.15, -3.5, 0, 8]) }],
      ['count', { shape: [2], data: new Int32Array([2147483100, 10]) }],
    ]);
    expect(await commitUpdate(dir, second.version, second.tensors, trainedSecond)).toEqual({ version: 3, concurrentCommits: 1 });

    const merged = loadStore(dir);
    const expected = new Map<string, StoreTensor>();
    for (const [name, { shape, data }] of base) {
      const a = trainedFirst.get(name)!.data;
      const b = trainedSecond.get(name)!.data;
      expected.set(name, { shape, data: data.map((v, i) => a[i]! + (b[i]! - v)) });
    }
    expectBitExact(merged.tensors, expected);
    // int32 arithmetic wraps: 2147483600 + 100 passes the int32 maximum.
    expect(merged.tensors.get('count')!.data[0]).toBe(-2147483596);
  });

  it('commits exactly `trained` when nobody else committed since the load', async () => {
    const dir = freshDir();
    const base = new Map<string, StoreTensor>([['w', { shape: [4], data: new Float32Array([1e30, 0, 1, 2]) }]]);
    await initStore(dir, base, {});
    const loaded = loadStore(dir);
    // base + (trained − base) would give 0, +0, a quiet NaN and a rounded value here.
    const trained = new Map<string, StoreTensor>([['w', { shape: [4], data: floats([0x3f800000, 0x80000000, 0x7f800001, 0x00000001]) }]]);
    expect(await commitUpdate(dir, loaded.version, loaded.tensors, trained)).toEqual({ version: 2, concurrentCommits: 0 });
    expectBitExact(loadStore(dir).tensors, trained);
  });

  it('serialises commits from one process and leaves no stray files behind', async () => {
    const dir = freshDir();
    const base = sampleTensors().set('conv/kernel', { shape: [2, 5], data: new Float32Array(10).fill(1) });
    await initStore(dir, base, {});
    const { version, tensors } = loadStore(dir);
    await Promise.all([1, 2, 4].map((delta) => commitUpdate(dir, version, tensors, addTo(tensors, delta, delta))));
    const final = loadStore(dir);
    expect(final.version).toBe(4);
    expectBitExact(final.tensors, addTo(tensors, 7, 7));
    expect(readdirSync(dir).sort()).toEqual([MANIFEST_FILE, readStoreManifest(dir).dataFile].sort());
  });
});

describe('atomic writes', () => {
  it('remove the temp files of writers that died before their rename, and no one else\'s', () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const stale = `.state.json.${dead}.1700000000000.tmp`;
    const live = `.state.json.${process.pid}.1700000000001.tmp`;
    const other = `.other.json.${dead}.1700000000002.tmp`;
    for (const name of [stale, live, other]) writeFileSync(join(dir, name), 'partial');
    writeFileAtomic(join(dir, 'state.json'), '{}');
    expect(readdirSync(dir).sort()).toEqual([live, other, 'state.json'].sort());
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('{}');
  });
});

describe('weight store refuses damaged or mismatched stores', () => {
  async function storeWithData(): Promise<string> {
    const dir = freshDir();
    await initStore(dir, sampleTensors(), {});
    return dir;
  }

  it('refuses a truncated, oversized or missing data file', async () => {
    const dir = await storeWithData();
    const data = dataFileOf(dir);
    truncateSync(data, statSync(data).size - 4);
    expect(() => loadStore(dir)).toThrow(`${data}: data file truncated: 72 bytes, manifest says 76`);

    const other = await storeWithData();
    appendFileSync(dataFileOf(other), Buffer.alloc(1));
    expect(() => loadStore(other)).toThrow(`${dataFileOf(other)}: data file oversized: 77 bytes, manifest says 76`);

    rmSync(dataFileOf(other));
    expect(() => loadStore(other)).toThrow(`${dataFileOf(other)}: data file missing (manifest version 1 refers to it)`);
  });

  it('refuses a flipped byte by its checksum', async () => {
    const dir = await storeWithData();
    const data = dataFileOf(dir);
    const bytes = readFileSync(data);
    bytes[45]! ^= 0x10;
    writeFileSync(data, bytes);
    expect(() => loadStore(dir)).toThrow(WeightStoreError);
    expect(() => loadStore(dir)).toThrow(new RegExp(`^${data}: checksum mismatch: SHA-256 [0-9a-f]{64}, manifest says`));
  });

  it('refuses unparsable, foreign, newer-format and schema-invalid manifests', async () => {
    const manifestPath = (dir: string) => join(dir, MANIFEST_FILE);
    const cases: [(manifest: Record<string, unknown>) => void, string][] = [
      [(m) => (m.formatVersion = 2), 'unknown format version 2 (this build reads version 1)'],
      [(m) => (m.format = 'tfjs-weights'), 'not a weight store manifest (format "tfjs-weights", expected "nni-enas-weights")'],
      [(m) => delete m.sha256, 'invalid manifest: missing key "sha256"'],
      [(m) => ((m.tensors as { dtype: string }[])[0]!.dtype = 'float64'), 'invalid manifest: key "tensors.0.dtype"'],
      [(m) => (m.dataFile = '../elsewhere.bin'), 'invalid manifest: key "dataFile"'],
      [(m) => ((m.tensors as { length: number }[])[1]!.length = 16), 'invalid manifest: tensor "bn/steps" has length 16 bytes'],
    ];
    for (const [edit, problem] of cases) {
      const dir = await storeWithData();
      rewriteManifest(dir, edit);
      expect(() => loadStore(dir)).toThrow(`${manifestPath(dir)}: ${problem}`);
    }
    const dir = await storeWithData();
    writeFileSync(manifestPath(dir), '{"format": "nni-enas-weights",');
    expect(() => loadStore(dir)).toThrow(`${manifestPath(dir)}: unparsable manifest:`);
    expect(() => loadStore(freshDir())).toThrow('no weight store here (manifest missing)');
  });

  it('refuses commits whose names, shapes or dtypes differ from the store, naming the first tensor', async () => {
    const dir = await storeWithData();
    const { version, tensors } = loadStore(dir);
    const prefix = `${join(dir, MANIFEST_FILE)}: commit refused: `;
    const renamed = new Map([...tensors].map(([name, t]) => [name === 'dense/bias' ? 'dense/b' : name, t]));
    await expect(commitUpdate(dir, version, tensors, renamed)).rejects.toThrow(
      `${prefix}tensor "dense/bias" is missing from the trained tensors`,
    );
    const reshaped = new Map(tensors).set('conv/kernel', { shape: [5, 2], data: new Float32Array(10) });
    await expect(commitUpdate(dir, version, reshaped, tensors)).rejects.toThrow(
      `${prefix}tensor "conv/kernel" has shape [5,2] in the commit base, expected [2,5]`,
    );
    const retyped = new Map(tensors).set('bn/steps', { shape: [5], data: new Float32Array(5) });
    await expect(commitUpdate(dir, version, tensors, retyped)).rejects.toThrow(
      `${prefix}tensor "bn/steps" is float32 in the trained tensors, expected int32`,
    );
    const extra = new Map(tensors).set('new/w', { shape: [1], data: new Float32Array(1) });
    await expect(commitUpdate(dir, version, tensors, extra)).rejects.toThrow(`${prefix}tensor "new/w" in the trained tensors is not in the store`);
    await expect(commitUpdate(dir, version + 1, tensors, tensors)).rejects.toThrow('older than the commit\'s base version 2');
    expect(loadStore(dir).version).toBe(1);
    const missing = freshDir();
    await expect(commitUpdate(missing, version, tensors, tensors)).rejects.toThrow(`${missing}: cannot lock, no such directory`);
  });
});

describe('weight store lock', () => {
  const noLog = () => {};

  function spawnFixture(script: string, args: string[]): ChildProcess {
    return spawn(process.execPath, [join(fixtures, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  function outputOf(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  }

  /** Starts a child that holds the lock on `dir` until killed. */
  async function lockHolder(dir: string): Promise<ChildProcess> {
    const child = spawnFixture('store-lock-holder.mjs', [dir]);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
    });
    return child;
  }

  beforeAll(() => {
    // The children run the compiled store; a stale build would test old code.
    const built = join(root, 'dist', 'trial', 'store.js');
    const stale = (() => {
      try {
        return statSync(built).mtimeMs < statSync(join(root, 'trial', 'store.ts')).mtimeMs;
      } catch {
        return true;
      }
    })();
    if (stale) throw new Error(`${built} is missing or older than trial/store.ts: run \`npx tsc -p .\` first`);
  });

  it('times out on a live lock with a clear error, then breaks it once its holder is dead', async () => {
    const dir = freshDir();
    await initStore(dir, sampleTensors(), {});
    const { version, tensors } = loadStore(dir);
    const holder = await lockHolder(dir);
    const lockPath = join(dir, LOCK_FILE);
    try {
      await expect(commitUpdate(dir, version, tensors, tensors, { lockTimeoutMs: 300, log: noLog })).rejects.toThrow(
        new RegExp(`^${lockPath}: timed out after 300 ms waiting for the lock of live pid ${holder.pid} \\(since `),
      );
    } finally {
      const exited = outputOf(holder);
      holder.kill('SIGKILL');
      await exited;
    }
    expect(readdirSync(dir)).toContain(LOCK_FILE);
    const lines: string[] = [];
    expect(await commitUpdate(dir, version, tensors, tensors, { lockTimeoutMs: 5000, log: (line) => lines.push(line) })).toEqual({
      version: 2,
      concurrentCommits: 0,
    });
    expect(lines).toEqual([expect.stringMatching(new RegExp(`broke stale lock ${lockPath} of pid ${holder.pid} on ${hostname()}`))]);
    expect(readdirSync(dir)).not.toContain(LOCK_FILE);
  });

  // Pid reuse is detected through /proc/<pid>/stat start times.
  it.skipIf(process.platform !== 'linux')('treats a lock whose pid now belongs to another process as stale', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const reused = { pid: process.pid, hostname: hostname(), createdAt: new Date().toISOString(), nonce: 'abc1', startTicks: 1 };
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify(reused));
    const lines: string[] = [];
    expect(await withStoreLock(dir, () => 'entered', { lockTimeoutMs: 2000, log: (line) => lines.push(line) })).toBe('entered');
    expect(lines).toHaveLength(1);
  });

  it('waits out locks it cannot judge: another host, an unreadable file', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const lockPath = join(dir, LOCK_FILE);
    writeFileSync(lockPath, JSON.stringify({ pid: 999999, hostname: 'other-host', createdAt: '2024-01-01T00:00:00Z', nonce: 'ab' }));
    await expect(withStoreLock(dir, () => {}, { lockTimeoutMs: 50, log: noLog })).rejects.toThrow(
      `${lockPath}: timed out after 50 ms waiting for the lock of pid 999999 on host other-host (since 2024-01-01T00:00:00Z), ` +
        `whose liveness cannot be checked from ${hostname()}; delete the file if that process is gone`,
    );
    writeFileSync(lockPath, 'garbage');
    await expect(withStoreLock(dir, () => {}, { lockTimeoutMs: 50, log: noLog })).rejects.toThrow(
      `${lockPath}: timed out after 50 ms waiting for an unreadable lock file`,
    );
  });

  async function trainConcurrently(rounds: number): Promise<void> {
    const dir = freshDir();
    const barrier = join(scratch, `barrier-${dirCount++}`);
    mkdirSync(barrier);
    const base = new Map<string, StoreTensor>([
      ['w', { shape: [64, 32], data: new Float32Array(64 * 32).map((_, i) => (i % 17) - 8) }],
      ['b', { shape: [32], data: new Float32Array(32).fill(0.5) }],
      ['steps', { shape: [1], data: new Int32Array([100]) }],
    ]);
    await initStore(dir, base, {});
    const children = [
      spawnFixture('store-trainer.mjs', [dir, barrier, 'a', 'b', String(rounds), '1', '1']),
      spawnFixture('store-trainer.mjs', [dir, barrier, 'b', 'a', String(rounds), '0.25', '1000']),
    ];
    const results = await Promise.all(children.map(outputOf));
    for (const { code, stderr } of results) expect(code, stderr).toBe(0);

    const final = loadStore(dir);
    expect(final.version).toBe(1 + 2 * rounds);
    expectBitExact(final.tensors, addTo(base, 1.25 * rounds, 1001 * rounds));
    // Both children load every round before either commits it, so each round one of them merged.
    const merged = results.reduce((n, { stdout }) => n + JSON.parse(stdout).merged, 0);
    expect(merged).toBeGreaterThanOrEqual(rounds);
  }

  it('lands the updates of two processes training concurrently', () => trainConcurrently(1));

  it('lands every update of two processes committing repeatedly', () => trainConcurrently(5));
});

describe('tfjs glue', () => {
  beforeAll(async () => {
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
  });

  it('saves model state and assigns it back without leaking tensors', async () => {
    const state = new Map<string, tf.Variable>([
      ['conv/kernel', tf.variable(tf.tensor4d([...Array(24).keys()].map((i) => i / 7 - 1), [2, 2, 3, 2]))],
      ['bn/mean', tf.variable(tf.tensor1d([0.5, -0.25]))],
      ['optimizer/iterations', tf.variable(tf.scalar(41, 'int32'))],
    ]);
    const original = readModelState(state);
    const snapshot = new Map([...original].map(([name, t]) => [name, { shape: t.shape, data: t.data.slice() }]));
    const dir = freshDir();
    await initStore(dir, original, { model: 'glue' });

    for (const [name, variable] of state) {
      tf.tidy(() => variable.assign(variable.dtype === 'int32' ? tf.scalar(7, 'int32') : tf.randomNormal(variable.shape)));
      expect(readModelState(state).get(name)!.data).not.toEqual(snapshot.get(name)!.data);
    }

    const loaded = loadStore(dir);
    const before = tf.memory().numTensors;
    assignModelState(state, loaded.tensors);
    expect(tf.memory().numTensors).toBe(before);
    expectBitExact(readModelState(state), snapshot);

    // One trial's cycle: load, train, read back, commit.
    tf.tidy(() => state.get('bn/mean')!.assign(tf.add(state.get('bn/mean')!, 1)));
    await commitUpdate(dir, loaded.version, loaded.tensors, readModelState(state));
    expect([...loadStore(dir).tensors.get('bn/mean')!.data]).toEqual([1.5, 0.75]);
    state.forEach((variable) => variable.dispose());
  });

  it('refuses weights that do not fit the model', () => {
    const state = new Map([['w', tf.variable(tf.zeros([2, 3]))]]);
    expect(() => assignModelState(state, new Map([['w', { shape: [3, 2], data: new Float32Array(6) }]]))).toThrow(
      'cannot assign weights to the model: tensor "w" has shape [3,2] in the weights to assign, expected [2,3]',
    );
    expect(() => assignModelState(state, new Map([['v', { shape: [2, 3], data: new Float32Array(6) }]]))).toThrow(
      'tensor "w" is missing from the weights to assign',
    );
    const bools = new Map([['mask', tf.variable(tf.tensor1d([true], 'bool'))]]);
    expect(() => readModelState(bools)).toThrow('model state "mask" is bool; the weight store holds float32 and int32 only');
    state.get('w')!.dispose();
    bools.get('mask')!.dispose();
  });
});
