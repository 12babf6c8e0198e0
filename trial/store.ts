/*
 * The shared-weight store: every supernet tensor in one directory, shared by concurrent NNI trials.
 *
 *   manifest.json          human-readable: format, store version, tensor table, SHA-256 of the data, meta
 *   weights-v<N>-<id>.bin  all tensors packed back to back in manifest order, little-endian
 *   store.lock             present while a writer holds the directory (see acquireLock)
 *
 * Readers never lock: a manifest is only ever replaced atomically, and it names a data file that
 * is complete and fsynced before the manifest points at it. Writers serialise on the lock, and a
 * trial's update is merged onto whatever other trials committed since it loaded (commitUpdate).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writevSync,
} from 'node:fs';
import { endianness, hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '../common/files.js';
import { compileChecker, ValidationError } from '../common/validate.js';

export const STORE_FORMAT = 'nni-enas-weights';
export const STORE_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const LOCK_FILE = 'store.lock';
const DATA_FILE_PATTERN = /^weights-v[0-9]+-[0-9a-f]+\.bin$/;
const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
const MAX_LOCK_POLL_MS = 50;

export type TensorDtype = 'float32' | 'int32';

/** One tensor's values, row-major. The dtype follows from the array type. */
export interface StoreTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

/** Named tensors; names are the model's stable state names (TrainableModel.state). */
export type StoreTensors = ReadonlyMap<string, StoreTensor>;

/** What a tensor must look like to belong to a store. */
export interface TensorLayout {
  name: string;
  dtype: TensorDtype;
  shape: number[];
}

export interface ManifestTensor extends TensorLayout {
  /** Byte offset into the data file. */
  offset: number;
  /** Byte length: 4 × the number of elements. */
  length: number;
}

export interface StoreManifest {
  format: typeof STORE_FORMAT;
  formatVersion: typeof STORE_FORMAT_VERSION;
  /** Counts commits: 1 after initialisation, +1 per commit. */
  version: number;
  /** ISO time this version was written. */
  createdAt: string;
  dataFile: string;
  dataBytes: number;
  /** SHA-256 (hex) of the whole data file. */
  sha256: string;
  tensors: ManifestTensor[];
  /** The caller's own description (space spec, model config, ...), kept across commits. */
  meta: Record<string, unknown>;
}

export interface StoreSnapshot {
  version: number;
  /** In store order; the arrays are views into one buffer read from the data file. */
  tensors: Map<string, StoreTensor>;
  meta: Record<string, unknown>;
}

export interface LockOptions {
  /** How long a writer waits for another writer's lock before giving up (default 30 s). */
  lockTimeoutMs?: number;
  /** Where the line about breaking a stale lock goes (default console.warn). */
  log?: (line: string) => void;
}

export interface InitOptions extends LockOptions {
  /** Replace an existing store even if its layout differs (its version count continues). */
  overwrite?: boolean;
}

/** A store that cannot be used as it is; the message names the file and the problem. */
export class WeightStoreError extends Error {
  override name = 'WeightStoreError';
}

const checkManifest = compileChecker<StoreManifest>(
  {
    type: 'object',
    required: ['format', 'formatVersion', 'version', 'createdAt', 'dataFile', 'dataBytes', 'sha256', 'tensors', 'meta'],
    additionalProperties: false,
    properties: {
      format: { type: 'string', const: STORE_FORMAT },
      formatVersion: { type: 'integer', const: STORE_FORMAT_VERSION },
      version: { type: 'integer', minimum: 1 },
      createdAt: { type: 'string' },
      dataFile: { type: 'string', pattern: DATA_FILE_PATTERN.source },
      dataBytes: { type: 'integer', minimum: 0 },
      sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      tensors: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'dtype', 'shape', 'offset', 'length'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1 },
            dtype: { type: 'string', enum: ['float32', 'int32'] },
            shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
            offset: { type: 'integer', minimum: 0 },
            length: { type: 'integer', minimum: 0 },
          },
        },
      },
      meta: { type: 'object' },
    },
  },
  'weight store manifest',
);

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function dtypeOf(data: unknown): TensorDtype | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  return undefined;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** How `tensor` differs from `expected` (missing, dtype, shape, or a data length that does not fit its shape), or undefined when it matches. */
export function tensorMismatch(expected: { name: string; dtype: TensorDtype; shape: readonly number[] }, tensor: StoreTensor | undefined, what: string): string | undefined {
  if (!tensor) return `tensor "${expected.name}" is missing from ${what}`;
  const dtype = dtypeOf(tensor.data);
  if (dtype !== expected.dtype) {
    return `tensor "${expected.name}" is ${dtype ?? 'neither float32 nor int32'} in ${what}, expected ${expected.dtype}`;
  }
  if (!sameShape(tensor.shape, expected.shape)) {
    return `tensor "${expected.name}" has shape [${tensor.shape}] in ${what}, expected [${expected.shape}]`;
  }
  if (tensor.data.length !== elementCount(expected.shape)) {
    return `tensor "${expected.name}" has ${tensor.data.length} values in ${what}, its shape [${expected.shape}] needs ${elementCount(expected.shape)}`;
  }
  return undefined;
}

/**
 * The first way `actual` differs from `reference` (a tensorMismatch, or an extra tensor), or
 * undefined when they match. `what` names `actual`, `referenceWhat` names `reference`.
 */
export function layoutMismatch(
  reference: readonly TensorLayout[],
  actual: StoreTensors,
  what: string,
  referenceWhat = 'the store',
): string | undefined {
  for (const expected of reference) {
    const mismatch = tensorMismatch(expected, actual.get(expected.name), what);
    if (mismatch) return mismatch;
  }
  if (actual.size !== reference.length) {
    const known = new Set(reference.map((t) => t.name));
    const extra = [...actual.keys()].find((name) => !known.has(name));
    return `tensor "${extra}" in ${what} is not in ${referenceWhat}`;
  }
  return undefined;
}

/** Layout of caller-supplied tensors, checking each is a well-formed float32/int32 tensor. */
function layoutOf(tensors: StoreTensors, what: string): TensorLayout[] {
  return [...tensors].map(([name, tensor]) => {
    const dtype = dtypeOf(tensor.data);
    const shape = [...tensor.shape];
    if (!name) throw new Error(`${what}: a tensor has an empty name`);
    if (!dtype) throw new Error(`${what}: tensor "${name}" is neither a Float32Array nor an Int32Array`);
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${what}: tensor "${name}" has invalid shape [${shape}]`);
    if (tensor.data.length !== elementCount(shape)) {
      throw new Error(`${what}: tensor "${name}" has ${tensor.data.length} values, its shape [${shape}] needs ${elementCount(shape)}`);
    }
    return { name, dtype, shape };
  });
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Reads and checks `dir`'s manifest: JSON, format and version, schema, and a consistent tensor table. */
export function readStoreManifest(dir: string): StoreManifest {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') throw new WeightStoreError(`${path}: no weight store here (manifest missing)`);
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new WeightStoreError(`${path}: unparsable manifest: ${(error as Error).message}`);
  }
  // Name format problems before the schema does, so an old or foreign file gets a precise error.
  const head = (parsed ?? {}) as { format?: unknown; formatVersion?: unknown };
  if (head.format !== STORE_FORMAT) {
    throw new WeightStoreError(`${path}: not a weight store manifest (format ${JSON.stringify(head.format)}, expected "${STORE_FORMAT}")`);
  }
  if (head.formatVersion !== STORE_FORMAT_VERSION) {
    throw new WeightStoreError(
      `${path}: unknown format version ${JSON.stringify(head.formatVersion)} (this build reads version ${STORE_FORMAT_VERSION})`,
    );
  }
  let manifest: StoreManifest;
  try {
    manifest = checkManifest(parsed);
  } catch (error) {
    if (error instanceof ValidationError) throw new WeightStoreError(`${path}: invalid manifest: ${error.problems.join('; ')}`);
    throw error;
  }
  const names = new Set<string>();
  let end = 0;
  for (const t of manifest.tensors) {
    const problem = names.has(t.name)
      ? 'appears twice'
      : t.length !== 4 * elementCount(t.shape)
        ? `has length ${t.length} bytes, its shape [${t.shape}] needs ${4 * elementCount(t.shape)}`
        : t.offset !== end
          ? `starts at byte ${t.offset}, expected ${end} (tensors are packed in order)`
          : undefined;
    if (problem) throw new WeightStoreError(`${path}: invalid manifest: tensor "${t.name}" ${problem}`);
    names.add(t.name);
    end += t.length;
  }
  if (end !== manifest.dataBytes) {
    throw new WeightStoreError(`${path}: invalid manifest: tensors cover ${end} bytes but dataBytes is ${manifest.dataBytes}`);
  }
  return manifest;
}

// Typed arrays are read and written as raw bytes, and the format is defined as little-endian.
function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('the weight store format is little-endian; this machine is big-endian');
}

/** Reads the data file behind `manifest` from `fd` into `allocate`'s array, refusing a wrong size. */
function readData(fd: number, dataPath: string, manifest: StoreManifest, allocate: (size: number) => Uint8Array): Uint8Array {
  const size = fstatSync(fd).size;
  if (size !== manifest.dataBytes) {
    const problem = size < manifest.dataBytes ? 'truncated' : 'oversized';
    throw new WeightStoreError(`${dataPath}: data file ${problem}: ${size} bytes, manifest says ${manifest.dataBytes}`);
  }
  const bytes = allocate(size);
  for (let done = 0; done < size; ) {
    const n = readSync(fd, bytes, done, size - done, done);
    if (n === 0) throw new WeightStoreError(`${dataPath}: data file truncated while reading: ${done} of ${size} bytes`);
    done += n;
  }
  return bytes;
}

/** A store version as read, before its data is held to the manifest's SHA-256 (loadStore does both). */
export interface UncheckedStore {
  snapshot: StoreSnapshot;
  manifest: StoreManifest;
  dataPath: string;
  /** The whole data file; the snapshot's tensors are views into it. */
  bytes: Uint8Array;
}

/** Throws unless `sha256`, computed over `read.bytes`, is the manifest's. */
export function assertChecksum(read: UncheckedStore, sha256: string): void {
  if (sha256 !== read.manifest.sha256) {
    throw new WeightStoreError(`${read.dataPath}: checksum mismatch: SHA-256 ${sha256}, manifest says ${read.manifest.sha256}`);
  }
}

/**
 * The newest version of the store in `dir`, its manifest checked and its data read whole into
 * `allocate`'s array (a 4-aligned one: the tensors are views into it) but not checksummed: the
 * caller must call assertChecksum before using it, as loadStore does. Takes no lock. The default
 * array is a Buffer of its own, not from Buffer's pool, whose byteOffset need not be 4-aligned.
 */
export function readStoreUnchecked(dir: string, allocate: (size: number) => Uint8Array = (size) => Buffer.allocUnsafeSlow(size)): UncheckedStore {
  assertLittleEndian();
  let manifest = readStoreManifest(dir);
  for (;;) {
    const dataPath = join(dir, manifest.dataFile);
    let fd: number;
    try {
      fd = openSync(dataPath, 'r');
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      // A writer may have committed and removed this data file after we read the manifest.
      const newer = readStoreManifest(dir);
      if (newer.dataFile === manifest.dataFile) {
        throw new WeightStoreError(`${dataPath}: data file missing (manifest version ${manifest.version} refers to it)`);
      }
      manifest = newer;
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = readData(fd, dataPath, manifest, allocate);
    } finally {
      closeSync(fd);
    }
    const tensors = new Map<string, StoreTensor>();
    for (const t of manifest.tensors) {
      const [offset, length] = [bytes.byteOffset + t.offset, t.length / 4];
      tensors.set(t.name, { shape: t.shape, data: t.dtype === 'float32' ? new Float32Array(bytes.buffer, offset, length) : new Int32Array(bytes.buffer, offset, length) });
    }
    return { snapshot: { version: manifest.version, tensors, meta: manifest.meta }, manifest, dataPath, bytes };
  }
}

/** The newest version of the store in `dir`, checked end to end. Takes no lock. */
export function loadStore(dir: string): StoreSnapshot {
  const read = readStoreUnchecked(dir);
  assertChecksum(read, createHash('sha256').update(read.bytes).digest('hex'));
  return read.snapshot;
}

/**
 * Writes `tensors` (in `layout` order) as `version`: a fresh data file, fsynced, then the manifest
 * swapped in atomically, then the data files it no longer names removed. Call under the lock.
 */
function writeVersion(dir: string, version: number, layout: readonly TensorLayout[], tensors: StoreTensors, meta: Record<string, unknown>): void {
  assertLittleEndian();
  const dataFile = `weights-v${version}-${randomBytes(4).toString('hex')}.bin`;
  const dataPath = join(dir, dataFile);
  const hash = createHash('sha256');
  const entries: ManifestTensor[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of layout) {
    const data = tensors.get(t.name)!.data;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    hash.update(bytes);
    chunks.push(bytes);
    entries.push({ ...t, offset, length: bytes.byteLength });
    offset += bytes.byteLength;
  }
  let published = false;
  try {
    const fd = openSync(dataPath, 'wx');
    try {
      // One gathered write straight from the caller's arrays: no concatenated copy.
      const written = writevSync(fd, chunks);
      if (written !== offset) throw new Error(`${dataPath}: short write, ${written} of ${offset} bytes`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const manifest: StoreManifest = {
      format: STORE_FORMAT,
      formatVersion: STORE_FORMAT_VERSION,
      version,
      createdAt: new Date().toISOString(),
      dataFile,
      dataBytes: offset,
      sha256: hash.digest('hex'),
      tensors: entries,
      meta,
    };
    writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    published = true;
  } finally {
    if (!published) rmSync(dataPath, { force: true });
  }
  // Also sweeps data files of writers that crashed before publishing; safe since we hold the lock.
  for (const name of readdirSync(dir)) {
    if (name !== dataFile && DATA_FILE_PATTERN.test(name)) rmSync(join(dir, name), { force: true });
  }
}

/**
 * Creates the store in `dir` with `tensors` as version 1. If a store is already there with the
 * same layout it is kept (created: false), so every trial may call this; a different layout is an
 * error unless `overwrite` is set.
 */
export async function initStore(
  dir: string,
  tensors: StoreTensors,
  meta: Record<string, unknown>,
  options: InitOptions = {},
): Promise<{ version: number; created: boolean }> {
  const layout = layoutOf(tensors, `initialising the weight store in ${dir}`);
  mkdirSync(dir, { recursive: true });
  return withStoreLock(
    dir,
    () => {
      let previous: StoreManifest | undefined;
      if (existsSync(join(dir, MANIFEST_FILE))) {
        try {
          previous = readStoreManifest(dir);
        } catch (error) {
          // Overwriting is the way out of a broken store, so only then is an unreadable one ignored.
          if (!(options.overwrite && error instanceof WeightStoreError)) throw error;
        }
      }
      if (previous && !options.overwrite) {
        const mismatch = layoutMismatch(previous.tensors, tensors, 'the tensors to initialise with');
        if (mismatch) {
          throw new WeightStoreError(`${join(dir, MANIFEST_FILE)}: store exists with a different layout: ${mismatch} (pass overwrite to replace it)`);
        }
        return { version: previous.version, created: false };
      }
      const version = (previous?.version ?? 0) + 1;
      writeVersion(dir, version, layout, tensors, meta);
      return { version, created: true };
    },
    options,
  );
}

/**
 * Lands a trial's training on the store: the trial loaded `baseVersion` as `base` and trained it
 * into `trained`. Under the lock, the newest version w becomes w + (trained − base) as w + 1, so
 * concurrent trials all keep their updates. When nobody committed since (w == baseVersion) the
 * result is `trained` itself, bit for bit. Float32 sums are formed in float64 and rounded once;
 * int32 sums wrap like int32 arithmetic.
 */
export async function commitUpdate(
  dir: string,
  baseVersion: number,
  base: StoreTensors,
  trained: StoreTensors,
  options: LockOptions = {},
): Promise<{ version: number; concurrentCommits: number }> {
  return withStoreLock(
    dir,
    () => {
      const manifestPath = join(dir, MANIFEST_FILE);
      const manifest = readStoreManifest(dir);
      const mismatch =
        layoutMismatch(manifest.tensors, base, 'the commit base') ?? layoutMismatch(manifest.tensors, trained, 'the trained tensors');
      if (mismatch) throw new WeightStoreError(`${manifestPath}: commit refused: ${mismatch}`);
      if (manifest.version < baseVersion) {
        throw new WeightStoreError(
          `${manifestPath}: commit refused: store is at version ${manifest.version}, older than the commit's base version ${baseVersion} (was it re-initialised?)`,
        );
      }
      const concurrentCommits = manifest.version - baseVersion;
      let result = trained;
      if (concurrentCommits > 0) {
        // Under the lock nobody replaces the files, so this reads exactly `manifest`'s version.
        const newest = loadStore(dir);
        for (const [name, { data: out }] of newest.tensors) {
          const from = base.get(name)!.data;
          const to = trained.get(name)!.data;
          for (let i = 0; i < out.length; i++) out[i] += to[i] - from[i];
        }
        result = newest.tensors;
      }
      const version = manifest.version + 1;
      writeVersion(dir, version, manifest.tensors, result, manifest.meta);
      return { version, concurrentCommits };
    },
    options,
  );
}

/*
 * The lock is hand-written rather than proper-lockfile: proper-lockfile decides staleness by the
 * lock's age and keeps it fresh from a timer, but a trial blocks its event loop for whole training
 * steps (tfjs ops are synchronous), so a live writer could look stale and be broken. Here staleness
 * is exact instead: the lock names its holder's pid, process start time (Linux) and host, and it is
 * broken only when that process is gone from this host. It costs a few dozen lines and no dependency.
 *
 * Creation is a hard link of a fully written temp file, so the lock never exists half-written.
 * Breaking a stale lock is guarded by an exclusively created token named after the lock's nonce,
 * so two waiters cannot both break it and one of them delete the other's fresh lock.
 */
interface LockOwner {
  pid: number;
  hostname: string;
  createdAt: string;
  /** Unique per acquisition: tells this lock apart from a later one with the same holder pid. */
  nonce: string;
  /** /proc/<pid>/stat start time, where available: detects pid reuse after the holder died. */
  startTicks?: number;
}

const checkLockOwner = compileChecker<LockOwner>(
  {
    type: 'object',
    required: ['pid', 'hostname', 'createdAt', 'nonce'],
    additionalProperties: false,
    properties: {
      pid: { type: 'integer', minimum: 1 },
      hostname: { type: 'string' },
      createdAt: { type: 'string' },
      nonce: { type: 'string', pattern: '^[0-9a-f]+$' },
      startTicks: { type: 'integer', minimum: 0 },
    },
  },
  'lock file',
);

function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); fields are counted after the parenthesised command name, which may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined; // no procfs, or the process is gone
  }
}

function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if (errorCode(error) === 'ESRCH') return false;
    // EPERM: the process exists but belongs to someone else.
  }
  if (owner.startTicks === undefined) return true;
  const startTicks = processStartTicks(owner.pid);
  return startTicks === undefined || startTicks === owner.startTicks;
}

type LockState = { kind: 'absent' } | { kind: 'held'; owner: LockOwner } | { kind: 'invalid'; problem: string };

function readLock(lockPath: string): LockState {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { kind: 'absent' };
    throw error;
  }
  try {
    return { kind: 'held', owner: checkLockOwner(JSON.parse(text)) };
  } catch (error) {
    return { kind: 'invalid', problem: (error as Error).message };
  }
}

function breakingToken(lockPath: string, owner: LockOwner): string {
  return `${lockPath}.${owner.nonce}.breaking`;
}

/** Removes the stale lock `owner` left behind; false if another waiter is already doing so. */
function breakStaleLock(lockPath: string, owner: LockOwner, log: (line: string) => void): boolean {
  const token = breakingToken(lockPath, owner);
  try {
    closeSync(openSync(token, 'wx'));
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    const current = readLock(lockPath);
    // Only token holders remove a stale lock, so if it is still there it stays until we unlink it.
    if (current.kind === 'held' && current.owner.nonce === owner.nonce) {
      unlinkSync(lockPath);
      log(`weight store: broke stale lock ${lockPath} of pid ${owner.pid} on ${owner.hostname} (since ${owner.createdAt}; the process is gone)`);
    }
  } finally {
    unlinkSync(token);
  }
  return true;
}

async function acquireLock(dir: string, options: LockOptions): Promise<() => void> {
  const timeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const log = options.log ?? ((line: string) => console.warn(line));
  const lockPath = join(dir, LOCK_FILE);
  const me: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    createdAt: new Date().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
  const startTicks = processStartTicks(process.pid);
  if (startTicks !== undefined) me.startTicks = startTicks;
  const temp = `${lockPath}.${me.nonce}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(me) + '\n');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') throw new WeightStoreError(`${dir}: cannot lock, no such directory`);
    throw error;
  }
  try {
    const deadline = Date.now() + timeoutMs;
    for (let pauseMs = 1; ; pauseMs = Math.min(2 * pauseMs, MAX_LOCK_POLL_MS)) {
      try {
        linkSync(temp, lockPath);
        return () => releaseLock(lockPath, me, log);
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      const state = readLock(lockPath);
      if (state.kind === 'absent') continue;
      const sameHost = state.kind === 'held' && state.owner.hostname === me.hostname;
      const stale = state.kind === 'held' && sameHost && !isAlive(state.owner);
      if (stale && breakStaleLock(lockPath, state.owner, log)) continue;
      if (Date.now() >= deadline) {
        const holder =
          state.kind === 'invalid'
            ? `an unreadable lock file (${state.problem}); delete it if no writer is running`
            : stale
              ? `the stale lock of dead pid ${state.owner.pid}, which another waiter is breaking ` +
                `(${breakingToken(lockPath, state.owner)}); delete both files if no writer is running`
              : sameHost
                ? `the lock of live pid ${state.owner.pid} (since ${state.owner.createdAt})`
                : `the lock of pid ${state.owner.pid} on host ${state.owner.hostname} (since ${state.owner.createdAt}), ` +
                  `whose liveness cannot be checked from ${me.hostname}; delete the file if that process is gone`;
        throw new WeightStoreError(`${lockPath}: timed out after ${timeoutMs} ms waiting for ${holder}`);
      }
      // Jitter keeps waiters from polling in lockstep.
      await sleep(pauseMs * (0.5 + Math.random()));
    }
  } finally {
    unlinkSync(temp);
  }
}

function releaseLock(lockPath: string, me: LockOwner, log: (line: string) => void): void {
  const state = readLock(lockPath);
  if (state.kind === 'held' && state.owner.nonce === me.nonce) unlinkSync(lockPath);
  else log(`weight store: lock ${lockPath} was no longer ours at release (${state.kind}); left as it is`);
}

/** Runs `fn` while holding the directory's writer lock (the directory must exist). */
export async function withStoreLock<T>(dir: string, fn: () => T | Promise<T>, options: LockOptions = {}): Promise<T> {
  const release = await acquireLock(dir, options);
  try {
    return await fn();
  } finally {
    release();
  }
}
