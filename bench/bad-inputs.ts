/*
 * The fault table's "Bad input" section: every program of the project (the NNI tuner, the trial,
 * the embedded runner, compare) is given bad input as a real child process in a temporary
 * directory, and for each case the exit status, the first line of stderr, whether that is the
 * only line and names the flag or path at fault, and what changed in the directories the case
 * touches (nothing may be written or lost) are recorded and written as a markdown table.
 *
 *   node dist/bench/bad-inputs.js [--out docs/faults.md] [--only id,id,…]
 *
 * Needs `npm run build` first. The tuner is started directly as node with NNI's environment and
 * `--exp_params` (what tuner/nni_enas_tuner.py hands over), against a stand-in manager here:
 * one that speaks the protocol (IN, then GE 1 after ID, TE after TR), or one that sends half a
 * frame and closes. test/bad-inputs.test.ts runs a few of these cases through the same code.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { WebSocketServer } from 'ws';
import { nniConfigYaml } from '../common/nni-config-yaml.js';
import { Random } from '../common/random.js';
import { MICRO_OPS } from '../search-spaces/genotype.js';
import { initStore, loadStore } from '../trial/store.js';
import { decisions, DEFAULT_SPECS, fromTokens, searchSpaceOf, toParams, type Params, type SpaceSpec } from '../search-spaces/spaces.js';

/** The checkout: this file is dist/bench/bad-inputs.js, or bench/bad-inputs.ts when vitest runs it from source. */
const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = basename(dirname(HERE)) === 'dist' ? resolve(HERE, '..', '..') : resolve(HERE, '..');
const ENTRIES = {
  tuner: join(REPO, 'dist', 'tuner', 'main.js'),
  trial: join(REPO, 'dist', 'trial', 'main.js'),
  embedded: join(REPO, 'dist', 'cli', 'main.js'),
  compare: join(REPO, 'dist', 'cli', 'main.js'),
} as const;
const KJV_DIR = resolve(REPO, '..', 'shared', 'data', 'kjv-ptb');
const CASE_TIMEOUT_MS = 180_000;

export type Program = keyof typeof ENTRIES;

/** What a case runs and what it must leave alone. */
export interface Setup {
  args: string[];
  /** Variables added to (or, as undefined, removed from) an environment without NNI_* variables. */
  env?: Record<string, string | undefined>;
  /** Directories and files that must come out byte for byte as they went in. */
  watch: string[];
  /** The message should name one of these: the flag, key or path at fault. */
  names: string[];
  /** Tuner cases: the manager it connects to. */
  manager?: ManagerScript;
  timeoutMs?: number;
}

export interface ManagerScript {
  kind: 'protocol' | 'half-frame';
  searchSpace: unknown;
  resume?: boolean;
}

export interface BadInputCase {
  id: string;
  program: Program;
  /** The bad input, for the table. */
  input: string;
  setup(dir: string, fx: Fixtures): Promise<Setup>;
}

export interface CaseResult {
  id: string;
  program: Program;
  input: string;
  /** Exit code, or the signal, or "timeout". */
  status: string;
  /** The first line of stderr (tuner: its first ERROR log line), paths shortened. */
  message: string;
  /** Lines of stderr (tuner: ERROR lines plus lines that are not log lines, e.g. a stack). */
  lines: number;
  namesIt: boolean;
  /** Files added, removed or changed in the watched places. */
  changes: string[];
  /** Tuner: the ER the manager received, if any. */
  reportedToManager?: boolean;
  problems: string[];
}

// ---- fixtures ----------------------------------------------------------------------------------

const micro = DEFAULT_SPECS.micro;
const SMALL_MICRO: SpaceSpec = { space: 'micro', nodes: 2, ops: MICRO_OPS };

/** A seeded random architecture of `spec` as NNI parameters. */
export function randomParams(spec: SpaceSpec, seed: number): Params {
  const random = new Random(seed);
  return toParams(fromTokens(spec, decisions(spec).map((d) => random.int(d.choices.length))), spec);
}

const without = (params: Params, key: string): Params => Object.fromEntries(Object.entries(params).filter(([k]) => k !== key));

/** An IDX file of unsigned bytes (magic 0x0000080<dims>, big-endian dimensions, the bytes). */
function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x800 | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/** Noise images, classes interleaved: enough for a trial to load, build and take steps. */
function writeFashionTiny(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const random = new Random(7);
  for (const [prefix, perClass] of [['train', 30], ['t10k', 10]] as const) {
    const count = 10 * perClass;
    const images = Uint8Array.from({ length: count * 28 * 28 }, () => random.int(256));
    const labels = Uint8Array.from({ length: count }, (_, n) => n % 10);
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(idx([count, 28, 28], images)));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(idx([count], labels)));
  }
}

/** CIFAR-10 binary batches of 20 records each (label byte + 3072 pixel bytes). */
function writeCifarTiny(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const random = new Random(8);
  const batch = () => {
    const bytes = new Uint8Array(20 * 3073);
    for (let n = 0; n < 20; n++) {
      bytes[n * 3073] = n % 10;
      for (let p = 1; p < 3073; p++) bytes[n * 3073 + p] = random.int(256);
    }
    return bytes;
  };
  for (const name of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) writeFileSync(join(dir, `${name}.bin`), batch());
}

/** Flags of a micro trial small enough to take its steps in about a second. */
const tinyTrial = (fashion: string): string[] => [
  '--data-dir', fashion, '--subset', '2', '--channels', '2', '--layers', '0', '--batch-size', '8', '--eval-batch-size', '10', '--train-steps', '1', '--valid-batches', '1',
];

/** A config.yml for the embedded runner: a 2-node micro space on the tiny data. */
function writeConfig(dir: string, fashion: string, classArgs: unknown = { seed: 3 }, space: unknown = searchSpaceOf(SMALL_MICRO), trialFlags = ''): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'space.json'), JSON.stringify(space));
  const path = join(dir, 'config.yml');
  writeFileSync(path, nniConfigYaml({ experimentName: 'bad-inputs', trialCommand: `node dist/trial/main.js --mode shared --dataset fashion-mnist --data-dir ${fashion} ${trialFlags}`, trialCodeDirectory: REPO, classArgs }));
  return path;
}

/**
 * A place that cannot be written. chmod 0o555 stops anyone but root; root writes through it, so
 * as root the place is a path below a regular file instead (every mkdir there fails, ENOTDIR).
 */
export function unwritablePlace(dir: string): string {
  if (process.getuid?.() === 0) {
    writeFileSync(join(dir, 'a-file'), '');
    return join(dir, 'a-file', 'out');
  }
  const locked = join(dir, 'read-only');
  mkdirSync(locked);
  chmodSync(locked, 0o555);
  return join(locked, 'out');
}

export const UNWRITABLE_METHOD =
  process.getuid?.() === 0
    ? 'run as root, where chmod does not stop writes: the "unwritable" directory is a path below a regular file (ENOTDIR)'
    : 'a directory chmod 0o555';

/** Fixtures built on first use, once per run, under one temporary root. */
export class Fixtures {
  readonly root = mkdtempSync(join(tmpdir(), 'bad-inputs-'));
  private readonly made = new Map<string, Promise<string>>();

  private once(name: string, make: (dir: string) => Promise<void> | void): Promise<string> {
    let made = this.made.get(name);
    if (!made) {
      const dir = join(this.root, 'fixtures', name);
      mkdirSync(dir, { recursive: true });
      made = Promise.resolve(make(dir)).then(() => dir);
      this.made.set(name, made);
    }
    return made;
  }

  fashion(): Promise<string> {
    return this.once('fashion', writeFashionTiny);
  }

  cifar(): Promise<string> {
    return this.once('cifar', writeCifarTiny);
  }

  /** A store after one good trial (the store directory). */
  store(): Promise<string> {
    return this.once('store', async (dir) => {
      const run = await runProgram('trial', [...tinyTrial(await this.fashion()), '--store', join(dir, 'store'), '--output', join(dir, 'out'), '--params', JSON.stringify(randomParams(micro, 6))], {}, dir);
      if (run.code !== 0) throw new Error(`fixture: the good trial failed (${run.code}): ${run.stderr}`);
    }).then((dir) => join(dir, 'store'));
  }

  /** The run directory of a one-epoch tiny embedded search. */
  search(): Promise<string> {
    return this.once('search', async (dir) => {
      const config = writeConfig(join(dir, 'config'), await this.fashion());
      const run = await runProgram('embedded', ['search', '--config', config, '--preset', 'tiny', '--epochs', '1', '--derive-samples', '2', '--out', join(dir, 'run')], {}, dir);
      if (run.code !== 0) throw new Error(`fixture: the tiny search failed (${run.code}): ${run.stderr}`);
    }).then((dir) => join(dir, 'run'));
  }

  /** The tuner's checkpoint after IN and one GE (its directory). */
  tunerCheckpoint(): Promise<string> {
    return this.once('tuner', async (dir) => {
      const setup: Setup = { args: ['--exp_params', expParams({ seed: 1 })], watch: [], names: [], manager: { kind: 'protocol', searchSpace: searchSpaceOf(micro) } };
      const run = await runTuner(setup, dir);
      if (run.code !== 0 || !existsSync(join(dir, 'checkpoint', 'nni-enas-tuner.json'))) throw new Error(`fixture: the good tuner run failed (${run.code}): ${run.stderr}`);
    }).then((dir) => join(dir, 'checkpoint'));
  }

  dispose(): void {
    // Read-only directories first, or rm cannot empty them.
    const unlock = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true }))
        if (entry.isDirectory()) {
          chmodSync(join(dir, entry.name), 0o755);
          unlock(join(dir, entry.name));
        }
    };
    unlock(this.root);
    rmSync(this.root, { recursive: true, force: true });
  }
}

// ---- running a program -------------------------------------------------------------------------

interface Run {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stderr: string;
  stdout: string;
}

function withoutNni(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('NNI_')));
}

function runProgram(program: Program, args: string[], env: Record<string, string | undefined>, cwd: string, timeoutMs = CASE_TIMEOUT_MS): Promise<Run> {
  const fullEnv = { ...withoutNni(process.env), ...env };
  for (const [key, value] of Object.entries(fullEnv)) if (value === undefined) delete fullEnv[key];
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [ENTRIES[program], ...args], { cwd, env: fullEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk) => (stdout += String(chunk)));
    child.stderr.on('data', (chunk) => (stderr += String(chunk)));
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, timedOut, stderr, stdout });
    });
  });
}

/** Frames on the manager side of a tuner run. */
interface ManagerLog {
  fromTuner: string[];
  errors: string[];
}

/** A stand-in NNI manager on 127.0.0.1 (ws path /tuner, as NNI serves it). */
async function startManager(script: ManagerScript, log: ManagerLog): Promise<{ url: string; stop: () => Promise<void> }> {
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const inCommand = JSON.stringify({ type: 'IN', content: JSON.stringify(script.searchSpace) });
  let wss: WebSocketServer | undefined;
  if (script.kind === 'protocol') {
    wss = new WebSocketServer({ server, path: '/tuner' });
    wss.on('connection', (ws) => {
      const send = (type: string, content?: string) => ws.send(JSON.stringify(content === undefined ? { type } : { type, content }));
      ws.send(inCommand);
      ws.on('message', (data) => {
        let command: { type?: string; content?: string } = {};
        try {
          command = JSON.parse(String(data)) as typeof command;
        } catch {
          // recorded as "?"
        }
        log.fromTuner.push(command.type ?? '?');
        if (command.type === 'ER') log.errors.push(command.content ?? '');
        if (command.type === 'ID') {
          if (script.resume) {
            send('FD', '[]');
            send('AD', '[]');
          }
          send('GE', '1');
        }
        if (command.type === 'TR') send('TE');
      });
    });
  } else {
    // The handshake, then a text frame whose header promises the whole IN command but only half
    // of it follows, then the end of the connection; later connections are refused.
    server.on('upgrade', (request, socket) => {
      const key = String(request.headers['sec-websocket-key']);
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const payload = Buffer.from(inCommand);
      if (payload.length >= 65536) throw new Error('internal: the IN command of the stand-in manager is too long for its frame header');
      const header = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff]);
      socket.end(Buffer.concat([header, payload.subarray(0, payload.length >> 1)]));
      server.close();
    });
  }
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/tuner`,
    stop: async () => {
      for (const client of wss?.clients ?? []) client.terminate();
      await new Promise<void>((done) => (wss ? wss.close(() => done()) : done()));
      await new Promise<void>((done) => (server.listening ? server.close(() => done()) : done()));
    },
  };
}

/** The base64 experiment config NNI passes the dispatcher, with these classArgs. */
function expParams(classArgs: unknown): string {
  return Buffer.from(JSON.stringify({ experimentName: 'bad-inputs', trialConcurrency: 1, tuner: { codeDirectory: join(REPO, 'tuner'), className: 'nni_enas_tuner.EnasTuner', classArgs } })).toString('base64');
}

/** Starts the tuner as NNI would (NNI_* variables, `--exp_params`), against `setup.manager` if any. */
async function runTuner(setup: Setup, dir: string): Promise<Run & ManagerLog> {
  const log: ManagerLog = { fromTuner: [], errors: [] };
  const manager = setup.manager ? await startManager(setup.manager, log) : undefined;
  try {
    const env = {
      NNI_MODE: setup.manager?.resume ? 'resume' : 'start',
      NNI_TUNER_COMMAND_CHANNEL: manager?.url,
      NNI_CHECKPOINT_DIRECTORY: join(dir, 'checkpoint'),
      NNI_LOG_DIRECTORY: join(dir, 'log'),
      NNI_LOG_LEVEL: 'info',
      ...setup.env,
    };
    const run = await runProgram('tuner', setup.args, env, dir, setup.timeoutMs);
    return { ...run, ...log };
  } finally {
    await manager?.stop();
  }
}

// ---- what changed --------------------------------------------------------------------------------

/** Every file below `path` (or `path` itself) with the SHA-256 of its bytes; absent: empty. */
function snapshot(path: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (at: string) => {
    if (!existsSync(at)) return;
    const stat = statSync(at);
    if (stat.isDirectory()) {
      files.set(`${at}/`, 'dir');
      for (const name of readdirSync(at)) walk(join(at, name));
    } else files.set(at, createHash('sha256').update(readFileSync(at)).digest('hex'));
  };
  walk(path);
  return files;
}

function differences(before: Map<string, string>, after: Map<string, string>, shorten: (text: string) => string): string[] {
  const changes: string[] = [];
  for (const [path, hash] of after) {
    if (!before.has(path)) changes.push(`new ${shorten(path)}`);
    else if (before.get(path) !== hash) changes.push(`changed ${shorten(path)}`);
  }
  for (const path of before.keys()) if (!after.has(path)) changes.push(`lost ${shorten(path)}`);
  return changes;
}

// ---- the cases ---------------------------------------------------------------------------------

/** A tuner case with these classArgs against the protocol manager. */
function tunerArgsCase(id: string, input: string, classArgs: Record<string, unknown>, key: string): BadInputCase {
  return {
    id,
    program: 'tuner',
    input,
    setup: async (dir) => ({ args: ['--exp_params', expParams(classArgs)], watch: [join(dir, 'checkpoint')], names: [`"${key}"`], manager: { kind: 'protocol', searchSpace: searchSpaceOf(micro) } }),
  };
}

/** A trial case: tiny micro flags plus `flags`, these parameters, the good store copied in and watched. */
function trialCase(id: string, input: string, build: (dir: string, fx: Fixtures) => Promise<{ flags: string[]; params?: unknown; names: string[]; store?: boolean; watch?: string[] }>): BadInputCase {
  return {
    id,
    program: 'trial',
    input,
    setup: async (dir, fx) => {
      const spec = await build(dir, fx);
      const store = join(dir, 'store');
      if (spec.store !== false) cpSync(await fx.store(), store, { recursive: true });
      const output = join(dir, 'out');
      mkdirSync(output);
      const params = spec.params === undefined ? [] : ['--params', JSON.stringify(spec.params)];
      return {
        args: [...tinyTrial(await fx.fashion()), '--store', store, '--output', output, ...params, ...spec.flags],
        watch: spec.watch ?? [store, output],
        names: spec.names,
      };
    },
  };
}

const good = randomParams(micro, 6);

/** Copies a fixture directory into the case's directory, then lets `spoil` damage the copy. */
async function copied(from: Promise<string>, to: string, spoil: (copy: string) => void): Promise<string> {
  cpSync(await from, to, { recursive: true });
  spoil(to);
  return to;
}

const dataFileOf = (store: string): string => join(store, readdirSync(store).find((name) => name.endsWith('.bin'))!);
const halve = (path: string): void => truncateSync(path, Math.floor(statSync(path).size / 2));

export const CASES: BadInputCase[] = [
  // -- tuner --
  tunerArgsCase('tuner-unknown-key', 'classArgs with an unknown key (`learning_rat`)', { learning_rat: 0.1 }, 'learning_rat'),
  tunerArgsCase('tuner-wrong-type', 'classArgs `lstm_size: "big"` (wrong type)', { lstm_size: 'big' }, 'lstm_size'),
  tunerArgsCase('tuner-out-of-range', 'classArgs `baseline_decay: 1.5` (out of range)', { baseline_decay: 1.5 }, 'baseline_decay'),
  tunerArgsCase('tuner-yaml-number', 'classArgs `learning_rate: "1e-3"` (YAML read it as text)', { learning_rate: '1e-3' }, 'learning_rate'),
  {
    id: 'tuner-exp-params',
    program: 'tuner',
    input: '`--exp_params` that is not base64 JSON',
    setup: async (dir) => ({ args: ['--exp_params', '%%%'], watch: [join(dir, 'checkpoint')], names: ['--exp_params'], manager: { kind: 'protocol', searchSpace: searchSpaceOf(micro) } }),
  },
  {
    id: 'tuner-no-channel',
    program: 'tuner',
    input: 'started without NNI_TUNER_COMMAND_CHANNEL',
    setup: async (dir) => ({ args: ['--exp_params', expParams({})], watch: [join(dir, 'checkpoint')], names: ['NNI_TUNER_COMMAND_CHANNEL'] }),
  },
  {
    id: 'tuner-foreign-space',
    program: 'tuner',
    input: 'IN with a search space that is not an ENAS space (`lr`, `batch`)',
    setup: async (dir) => ({
      args: ['--exp_params', expParams({})],
      watch: [join(dir, 'checkpoint')],
      names: ['search space'],
      manager: { kind: 'protocol', searchSpace: { lr: { _type: 'choice', _value: [0.1, 0.01] }, batch: { _type: 'choice', _value: [32, 64] } } },
    }),
  },
  {
    id: 'tuner-truncated-checkpoint',
    program: 'tuner',
    input: 'resume from a checkpoint cut to half its bytes',
    setup: async (dir, fx) => {
      const checkpoint = await copied(fx.tunerCheckpoint(), join(dir, 'checkpoint'), (copy) => halve(join(copy, 'nni-enas-tuner.json')));
      return { args: ['--exp_params', expParams({ seed: 1 })], watch: [checkpoint], names: [join(checkpoint, 'nni-enas-tuner.json')], manager: { kind: 'protocol', searchSpace: searchSpaceOf(micro), resume: true } };
    },
  },
  {
    id: 'tuner-foreign-checkpoint',
    program: 'tuner',
    input: 'resume from a checkpoint of a controller with another `lstm_size`',
    setup: async (dir, fx) => {
      const checkpoint = await copied(fx.tunerCheckpoint(), join(dir, 'checkpoint'), () => {});
      return {
        args: ['--exp_params', expParams({ seed: 1, lstm_size: 16 })],
        watch: [checkpoint],
        names: [join(checkpoint, 'nni-enas-tuner.json')],
        manager: { kind: 'protocol', searchSpace: searchSpaceOf(micro), resume: true },
      };
    },
  },
  {
    id: 'tuner-half-frame',
    program: 'tuner',
    input: 'the manager sends half a frame (IN), closes and refuses reconnects',
    setup: async (dir) => ({ args: ['--exp_params', expParams({})], watch: [join(dir, 'checkpoint')], names: ['ws://127.0.0.1:'], manager: { kind: 'half-frame', searchSpace: searchSpaceOf(micro) }, timeoutMs: 90_000 }),
  },
  // -- trial: parameters and flags --
  trialCase('trial-foreign-dict', 'a foreign parameter dict (`{"x": 23, "layers": 3}`)', async () => ({ flags: [], params: { x: 23, layers: 3 }, names: ['parameters'] })),
  trialCase('trial-partial-dict', 'a parameter dict missing `normal_node_3_op_2`', async () => ({ flags: [], params: without(good, 'normal_node_3_op_2'), names: ['normal_node_3_op_2'] })),
  trialCase('trial-params-not-json', '`--params` that is not JSON', async () => ({ flags: ['--params', '{"normal_node_2_op_1": '], names: ['--params'] })),
  trialCase('trial-params-file-missing', '`--params-file` that does not exist', async (dir) => ({ flags: ['--params-file', join(dir, 'missing.json')], names: [join(dir, 'missing.json')] })),
  trialCase('trial-bad-flag', '`--train-steps -1`', async () => ({ flags: ['--train-steps', '-1'], params: good, names: ['--train-steps'] })),
  trialCase('trial-unknown-flag', 'an unknown flag `--trian-steps 3`', async () => ({ flags: ['--trian-steps', '3'], params: good, names: ['trian-steps'] })),
  trialCase('trial-table-mode-micro', '`--mode table` with micro parameters', async () => ({ flags: ['--mode', 'table'], params: good, names: ['--mode'] })),
  // -- trial: stores --
  trialCase('trial-store-other-model', 'a store made for another model (`--channels 3` against a 2-channel store)', async (dir) => ({ flags: ['--channels', '3'], params: good, names: [join(dir, 'store')] })),
  storeCase('trial-store-truncated-manifest', 'a store whose manifest.json is cut in half',
    (store) => halve(join(store, 'manifest.json')),
    (store) => [join(store, 'manifest.json')],
  ),
  storeCase('trial-store-truncated-data', 'a store whose weights file is cut in half',
    (store) => halve(dataFileOf(store)),
    (store) => [dataFileOf(store)],
  ),
  storeCase('trial-store-flipped-byte', 'a store with one byte of its weights changed',
    (store) => {
      const path = dataFileOf(store);
      const bytes = readFileSync(path);
      bytes[bytes.length >> 1] ^= 0xff;
      writeFileSync(path, bytes);
    },
    (store) => [dataFileOf(store)],
  ),
  storeCase('trial-store-foreign', 'a directory with a foreign manifest.json (a TensorFlow.js model) as `--store`',
    (store) => writeFileSync(join(store, 'manifest.json'), JSON.stringify({ format: 'layers-model', modelTopology: {}, weightsManifest: [] })),
    (store) => [join(store, 'manifest.json')],
  ),
  trialCase('trial-store-unwritable', 'a fresh `--store` in an unwritable place', async (dir) => {
    const store = join(unwritablePlace(dir), 'store');
    return { flags: ['--store', store], params: good, names: [store], store: false, watch: [dir] };
  }),
  trialCase('trial-output-unwritable', '`--output` in an unwritable place', async (dir) => {
    const output = unwritablePlace(dir);
    return { flags: ['--output', output], params: good, names: [output], watch: [dir] };
  }),
  // -- trial: data --
  trialCase('trial-data-dir-missing', '`--data-dir` that does not exist', async (dir) => ({ flags: ['--data-dir', join(dir, 'nowhere')], params: good, names: [join(dir, 'nowhere')] })),
  trialCase('trial-idx-truncated-gzip', 'Fashion-MNIST with train-images cut in half (gzip)', async (dir, fx) => {
    const data = await copied(fx.fashion(), join(dir, 'data'), (copy) => halve(join(copy, 'train-images-idx3-ubyte.gz')));
    return { flags: ['--data-dir', data], params: good, names: [join(data, 'train-images-idx3-ubyte.gz')] };
  }),
  trialCase('trial-idx-truncated-plain', 'Fashion-MNIST with an uncompressed train-labels file missing its last bytes', async (dir, fx) => {
    const data = await copied(fx.fashion(), join(dir, 'data'), (copy) => {
      const labels = readFileSync(join(copy, 'train-labels-idx1-ubyte.gz'));
      rmSync(join(copy, 'train-labels-idx1-ubyte.gz'));
      const plain = gunzipSync(labels);
      writeFileSync(join(copy, 'train-labels-idx1-ubyte'), plain.subarray(0, plain.length - 10));
    });
    return { flags: ['--data-dir', data], params: good, names: [join(data, 'train-labels-idx1-ubyte')] };
  }),
  trialCase('trial-idx-foreign', 'Fashion-MNIST whose train-images file is a PNG', async (dir, fx) => {
    const data = await copied(fx.fashion(), join(dir, 'data'), (copy) => writeFileSync(join(copy, 'train-images-idx3-ubyte.gz'), Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')));
    return { flags: ['--data-dir', data], params: good, names: [join(data, 'train-images-idx3-ubyte.gz')] };
  }),
  trialCase('trial-cifar-truncated', 'CIFAR-10 with data_batch_3.bin cut mid-record', async (dir, fx) => {
    const data = await copied(fx.cifar(), join(dir, 'cifar'), (copy) => truncateSync(join(copy, 'data_batch_3.bin'), 3073 * 7 + 1000));
    return { flags: ['--dataset', 'cifar10', '--data-dir', data], params: good, names: [join(data, 'data_batch_3.bin')], store: false, watch: [join(dir, 'out'), join(dir, 'store')] };
  }),
  trialCase('trial-cifar-no-dir', '`--dataset cifar10` with a `--data-dir` of Fashion-MNIST files', async (_, fx) => ({ flags: ['--dataset', 'cifar10'], params: good, names: [join(await fx.fashion(), 'data_batch_1.bin')], store: false })),
  {
    id: 'trial-ptb-truncated',
    program: 'trial',
    input: 'PTB-format text whose train file is cut to its first 3 lines (valid words unseen, no `<unk>`)',
    setup: async (dir) => {
      const data = join(dir, 'text');
      mkdirSync(data);
      for (const split of ['valid', 'test']) cpSync(join(KJV_DIR, `kjv.${split}.txt`), join(data, `kjv.${split}.txt`));
      writeFileSync(join(data, 'kjv.train.txt'), readFileSync(join(KJV_DIR, 'kjv.train.txt'), 'utf8').split('\n').slice(0, 3).join('\n'));
      const output = join(dir, 'out');
      mkdirSync(output);
      const store = join(dir, 'store');
      const args = ['--dataset', 'ptb', '--data-dir', data, '--hidden', '8', '--batch-size', '2', '--train-steps', '1', '--valid-batches', '1', '--store', store, '--output', output];
      return { args: [...args, '--params', JSON.stringify(randomParams(DEFAULT_SPECS.rnn, 2))], watch: [output, store], names: [join(data, 'kjv.valid.txt')] };
    },
  },
  trialCase('trial-table-missing', '`--mode table` with a `--table` that does not exist', async (dir) => ({
    flags: ['--mode', 'table', '--table', join(dir, 'nb201.csv')],
    params: randomParams(DEFAULT_SPECS.nb201, 1),
    names: [join(dir, 'nb201.csv')],
    store: false,
  })),
  {
    id: 'trial-nan-loss',
    program: 'trial',
    input: 'a loss that turns NaN: a store whose stem weights are NaN (checksums valid)',
    setup: async (dir, fx) => {
      // The first trial of such an experiment creates the store; the case is the next one, after the weights went bad.
      const store = join(dir, 'store');
      const flags = [...tinyTrial(await fx.fashion()), '--store', store];
      const first = await runProgram('trial', [...flags, '--output', join(dir, 'first'), '--params', JSON.stringify(randomParams(micro, 3))], {}, dir);
      if (!existsSync(join(store, 'manifest.json'))) throw new Error(`the first trial made no store (${first.code}): ${first.stderr}`);
      const snapshot = loadStore(store);
      const stem = [...snapshot.tensors.keys()].find((name) => name.startsWith('stem/'))!;
      snapshot.tensors.get(stem)!.data.fill(Number.NaN);
      await initStore(store, snapshot.tensors, snapshot.meta, { overwrite: true });
      const output = join(dir, 'out');
      mkdirSync(output);
      return { args: [...flags, '--output', output, '--params', JSON.stringify(good)], watch: [store, output], names: ['diverged', store] };
    },
  },
  // -- embedded runner --
  {
    id: 'search-config-missing',
    program: 'embedded',
    input: '`search --config` that does not exist',
    setup: async (dir) => ({ args: ['search', '--config', join(dir, 'config.yml'), '--preset', 'tiny', '--out', join(dir, 'run')], watch: [dir], names: [join(dir, 'config.yml')] }),
  },
  {
    id: 'search-bad-classargs',
    program: 'embedded',
    input: 'a config whose classArgs say `temperature: "hot"`',
    setup: async (dir, fx) => {
      const config = writeConfig(join(dir, 'config'), await fx.fashion(), { temperature: 'hot' });
      return { args: ['search', '--config', config, '--preset', 'tiny', '--out', join(dir, 'run')], watch: [dir], names: ['temperature'] };
    },
  },
  {
    id: 'search-foreign-space',
    program: 'embedded',
    input: 'a config whose search space is not an ENAS space',
    setup: async (dir, fx) => {
      const config = writeConfig(join(dir, 'config'), await fx.fashion(), { seed: 3 }, { lr: { _type: 'choice', _value: [0.1, 0.01] } });
      return { args: ['search', '--config', config, '--preset', 'tiny', '--out', join(dir, 'run')], watch: [dir], names: [join(dir, 'config', 'space.json')] };
    },
  },
  {
    id: 'search-out-unwritable',
    program: 'embedded',
    input: '`search --out` in an unwritable place',
    setup: async (dir, fx) => {
      const config = writeConfig(join(dir, 'config'), await fx.fashion());
      const out = unwritablePlace(dir);
      return { args: ['search', '--config', config, '--preset', 'tiny', '--out', out], watch: [dir], names: [out] };
    },
  },
  {
    id: 'search-data-truncated',
    program: 'embedded',
    input: 'a config whose `--data-dir` has train-images cut in half',
    setup: async (dir, fx) => {
      const data = await copied(fx.fashion(), join(dir, 'data'), (copy) => halve(join(copy, 'train-images-idx3-ubyte.gz')));
      const config = writeConfig(join(dir, 'config'), data);
      return { args: ['search', '--config', config, '--preset', 'tiny', '--out', join(dir, 'run')], watch: [dir], names: [join(data, 'train-images-idx3-ubyte.gz')] };
    },
  },
  {
    id: 'search-resume-truncated-checkpoint',
    program: 'embedded',
    input: '`search --resume` whose checkpoint weights file is cut in half',
    setup: async (dir, fx) => {
      const run = await copied(fx.search(), join(dir, 'run'), (copy) => halve(dataFileOf(join(copy, 'checkpoint'))));
      return { args: ['search', '--out', run, '--resume', '--epochs', '2'], watch: [run], names: [join(run, 'checkpoint')] };
    },
  },
  {
    id: 'search-resume-foreign-checkpoint',
    program: 'embedded',
    input: "`search --resume` whose checkpoint is a trial's weight store",
    setup: async (dir, fx) => {
      const run = await copied(fx.search(), join(dir, 'run'), () => {});
      rmSync(join(run, 'checkpoint'), { recursive: true });
      cpSync(await fx.store(), join(run, 'checkpoint'), { recursive: true });
      return { args: ['search', '--out', run, '--resume', '--epochs', '2'], watch: [run], names: [join(run, 'checkpoint')] };
    },
  },
  {
    id: 'derive-not-a-run',
    program: 'embedded',
    input: '`derive --run` of a directory that holds no search',
    setup: async (dir) => {
      mkdirSync(join(dir, 'empty'));
      return { args: ['derive', '--run', join(dir, 'empty')], watch: [dir], names: [join(dir, 'empty')] };
    },
  },
  {
    id: 'derive-flipped-checkpoint',
    program: 'embedded',
    input: '`derive` of a run whose checkpoint has one byte changed',
    setup: async (dir, fx) => {
      const run = await copied(fx.search(), join(dir, 'run'), (copy) => {
        const path = dataFileOf(join(copy, 'checkpoint'));
        const bytes = readFileSync(path);
        bytes[7] ^= 0x01;
        writeFileSync(path, bytes);
      });
      return { args: ['derive', '--run', run, '--samples', '2'], watch: [run], names: [join(run, 'checkpoint')] };
    },
  },
  {
    id: 'retrain-arch-missing',
    program: 'embedded',
    input: '`retrain --arch` that does not exist',
    setup: async (dir) => ({ args: ['retrain', '--arch', join(dir, 'best.json'), '--preset', 'tiny'], watch: [dir], names: [join(dir, 'best.json')] }),
  },
  {
    id: 'retrain-arch-foreign',
    program: 'embedded',
    input: '`retrain --arch` of a foreign JSON dict',
    setup: async (dir) => {
      writeFileSync(join(dir, 'hparams.json'), JSON.stringify({ lr: 0.1, optimizer: 'adam' }));
      return { args: ['retrain', '--arch', join(dir, 'hparams.json'), '--preset', 'tiny'], watch: [dir], names: [join(dir, 'hparams.json')] };
    },
  },
  {
    id: 'retrain-arch-partial',
    program: 'embedded',
    input: '`retrain --arch` of a parameter dict missing a key',
    setup: async (dir) => {
      writeFileSync(join(dir, 'partial.json'), JSON.stringify(without(good, 'reduce_node_2_input_1')));
      return { args: ['retrain', '--arch', join(dir, 'partial.json'), '--preset', 'tiny'], watch: [dir], names: ['reduce_node_2_input_1'] };
    },
  },
  {
    id: 'retrain-drop-path',
    program: 'embedded',
    input: '`retrain --drop-path 2` (out of range)',
    setup: async (dir) => {
      writeFileSync(join(dir, 'arch.json'), JSON.stringify(good));
      return { args: ['retrain', '--arch', join(dir, 'arch.json'), '--preset', 'tiny', '--drop-path', '2'], watch: [dir], names: ['--drop-path'] };
    },
  },
  {
    id: 'retrain-data-dir-missing',
    program: 'embedded',
    input: '`retrain --data-dir` that does not exist',
    setup: async (dir) => {
      writeFileSync(join(dir, 'arch.json'), JSON.stringify(good));
      return { args: ['retrain', '--arch', join(dir, 'arch.json'), '--preset', 'tiny', '--data-dir', join(dir, 'nowhere')], watch: [dir], names: [join(dir, 'nowhere')] };
    },
  },
  // -- compare --
  {
    id: 'compare-missing-source',
    program: 'compare',
    input: 'a source that does not exist',
    setup: async (dir) => ({ args: ['compare', join(dir, 'export.json'), '--out', join(dir, 'report')], watch: [dir], names: [join(dir, 'export.json')] }),
  },
  {
    id: 'compare-not-json',
    program: 'compare',
    input: 'an export file that is not JSON (Python’s bare `NaN`)',
    setup: async (dir) => {
      writeFileSync(join(dir, 'export.json'), '[{"parameter": {}, "value": NaN}]');
      return { args: ['compare', join(dir, 'export.json'), '--out', join(dir, 'report')], watch: [dir], names: [join(dir, 'export.json')] };
    },
  },
  {
    id: 'compare-space-file-not-json',
    program: 'compare',
    input: '`--space-file` that is not JSON',
    setup: async (dir) => {
      writeFileSync(join(dir, 'space.json'), '{"normal_node_2_op_1": ');
      writeFileSync(join(dir, 'export.json'), '[]');
      return { args: ['compare', join(dir, 'export.json'), '--space-file', join(dir, 'space.json'), '--out', join(dir, 'report')], watch: [dir], names: [join(dir, 'space.json'), '--space-file'] };
    },
  },
  {
    id: 'compare-bad-trials',
    program: 'compare',
    input: '`--trials 0`',
    setup: async (dir) => {
      writeFileSync(join(dir, 'export.json'), '[]');
      return { args: ['compare', join(dir, 'export.json'), '--trials', '0', '--out', join(dir, 'report')], watch: [dir], names: ['--trials'] };
    },
  },
  {
    id: 'compare-out-unwritable',
    program: 'compare',
    input: '`--out` in an unwritable place (a readable source)',
    setup: async (dir, fx) => {
      const runs = await fx.search();
      const out = unwritablePlace(dir);
      return { args: ['compare', runs, '--out', out], watch: [dir, runs], names: [out] };
    },
  },
];

/** A trial on a damaged copy of the good store; the message should name the damaged file. */
function storeCase(id: string, input: string, damage: (store: string) => void, named: (store: string) => string[]): BadInputCase {
  return {
    id,
    program: 'trial',
    input,
    setup: async (dir, fx) => {
      const store = await copied(fx.store(), join(dir, 'store'), damage);
      const output = join(dir, 'out');
      mkdirSync(output);
      return { args: [...tinyTrial(await fx.fashion()), '--store', store, '--output', output, '--params', JSON.stringify(good)], watch: [store, output], names: named(store) };
    },
  };
}

// ---- running and judging a case ------------------------------------------------------------------

/** A tuner stderr line: `[<ISO time>] LEVEL (nni-enas-tuner) text`. */
const LOG_LINE = /^\[[^\]]+\] (TRACE|DEBUG|INFO|WARNING|ERROR|FATAL) \(nni-enas-tuner\) (.*)$/;

export async function runCase(c: BadInputCase, fx: Fixtures): Promise<CaseResult> {
  const dir = join(fx.root, 'cases', c.id);
  mkdirSync(dir, { recursive: true });
  const setup = await c.setup(dir, fx);
  const shorten = (text: string) => text.split(dir).join('<case>').split(fx.root).join('<tmp>').split(REPO).join('<repo>');
  const before = setup.watch.map(snapshot);
  const run = c.program === 'tuner' ? await runTuner(setup, dir) : await runProgram(c.program, setup.args, setup.env ?? {}, dir, setup.timeoutMs);
  const after = setup.watch.map(snapshot);
  const changes = setup.watch.flatMap((_, i) => differences(before[i]!, after[i]!, shorten));

  const lines = run.stderr.split('\n').filter((line) => line.trim() !== '');
  let message: string;
  let count: number;
  let reportedToManager: boolean | undefined;
  if (c.program === 'tuner') {
    // The tuner's stderr is its log (NNI keeps it as the dispatcher's log): the message is its
    // first ERROR line; extra lines are further errors and anything that is not a log line.
    const errors = lines.filter((line) => !LOG_LINE.test(line) || /^\[[^\]]+\] (ERROR|FATAL) /.test(line));
    message = (errors[0] ?? '').replace(LOG_LINE, '$2');
    count = errors.length;
    reportedToManager = (run as Run & ManagerLog).errors.length > 0;
  } else {
    message = lines[0] ?? '';
    count = lines.length;
  }
  const namesIt = setup.names.some((name) => message.includes(name));
  const status = run.timedOut ? 'timeout' : run.signal ? run.signal : String(run.code);
  const problems: string[] = [];
  if (status === '0') problems.push('exit 0');
  if (run.timedOut) problems.push('timed out');
  if (count !== 1) problems.push(count === 0 ? 'no message' : `${count} lines`);
  if (!namesIt) problems.push('does not name the flag/path');
  if (changes.length) problems.push('files changed');
  return { id: c.id, program: c.program, input: c.input, status, message: shorten(message), lines: count, namesIt, changes, reportedToManager, problems };
}

/** Runs the cases `parallel` at a time, in order of the list. */
export async function runCases(cases: BadInputCase[], fx: Fixtures, parallel = 2, progress: (r: CaseResult) => void = () => {}): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i]!;
      try {
        results[i] = await runCase(c, fx);
      } catch (error) {
        results[i] = { id: c.id, program: c.program, input: c.input, status: 'not run', message: (error as Error).message.split('\n')[0]!, lines: 0, namesIt: false, changes: [], problems: ['setup failed'] };
      }
      progress(results[i]!);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return results;
}

// ---- the table -----------------------------------------------------------------------------------

/** Table cell text: clipped, pipes escaped. */
const cell = (text: string, max = 240): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text).replace(/\|/g, '\\|');
/** As inline code: a backtick inside would end it. */
const code = (text: string): string => (text ? `\`${cell(text).replace(/`/g, "'")}\`` : '(none)');

export const SECTION = '## Bad input';

export function tableSection(results: CaseResult[], date: string): string {
  const clean = results.filter((r) => r.problems.length === 0).length;
  const byProgram = (['tuner', 'trial', 'embedded', 'compare'] as const).map((p) => `${results.filter((r) => r.program === p).length} ${p}`).join(', ');
  const flagged = results.filter((r) => r.problems.length > 0);
  const lines = [
    SECTION,
    '',
    `Generated by \`npm run build && node dist/bench/bad-inputs.js --out docs/faults.md\` (replaces this section only), ${date}.`,
    `Each case runs the real program as a child process in a fresh temporary directory; "written / lost" compares every file`,
    `of the directories the case touches (stores, checkpoints, output and run directories) before and after, by SHA-256.`,
    `The tuner runs as node with NNI's environment against a stand-in manager; its stderr is its log, so its message is`,
    `its first ERROR line and "lines" counts ERROR lines and non-log lines (a stack trace would show there); "ER" marks an`,
    `error also reported to the manager. Unwritable places: ${UNWRITABLE_METHOD}. \`<case>\` is the case's temporary directory.`,
    '',
    `${results.length} cases (${byProgram}): ${clean} refused cleanly (non-zero exit, one line naming the flag or path, nothing written or lost)` +
      (flagged.length ? `; flagged: ${flagged.map((r) => `${r.id} (${r.problems.join(', ')})`).join('; ')}.` : '.'),
    '',
    '| # | program | bad input | exit | message (first line of stderr) | lines | names it | written / lost |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map((r, i) =>
      [
        '',
        String(i + 1),
        r.program,
        cell(r.input),
        r.reportedToManager ? `${r.status}, ER` : r.status,
        code(r.message),
        String(r.lines),
        r.namesIt ? 'yes' : '**no**',
        r.changes.length ? `**${cell(r.changes.join(', '), 160)}**` : 'nothing',
        '',
      ].join(' | ').trim(),
    ),
    '',
  ];
  return lines.join('\n');
}

/** Puts `section` into the markdown file at `path`, replacing the old one (up to the next `## `). */
export function writeSection(path: string, section: string): void {
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '# Faults\n';
  const start = old.indexOf(`${SECTION}\n`);
  let text: string;
  if (start < 0) text = `${old.trimEnd()}\n\n${section}`;
  else {
    const rest = old.slice(start + SECTION.length);
    const end = rest.search(/^## /m);
    text = old.slice(0, start) + section + (end < 0 ? '' : `\n${rest.slice(end)}`);
  }
  writeFileSync(path, text.endsWith('\n') ? text : `${text}\n`);
}

/** Throws unless the compiled programs exist. */
export function requireBuild(): void {
  for (const entry of new Set(Object.values(ENTRIES))) if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, only: { type: 'string' } } });
  requireBuild();
  const only = values.only?.split(',');
  const unknown = only?.filter((id) => !CASES.some((c) => c.id === id)) ?? [];
  if (unknown.length) throw new Error(`--only: no case ${unknown.join(', ')}`);
  const cases = only ? CASES.filter((c) => only.includes(c.id)) : CASES;
  const fx = new Fixtures();
  const started = performance.now();
  try {
    const results = await runCases(cases, fx, 2, (r) =>
      console.error(`${r.id}: exit ${r.status}, ${r.problems.length ? r.problems.join(', ') : 'clean'}: ${r.message}${r.changes.length ? ` [${r.changes.join(', ')}]` : ''}`),
    );
    const section = tableSection(results, new Date().toISOString().slice(0, 10));
    if (values.out) {
      writeSection(values.out, section);
      console.error(`wrote ${values.out} (${SECTION})`);
    } else process.stdout.write(section);
    const flagged = results.filter((r) => r.problems.length > 0).length;
    console.error(`${results.length} cases, ${results.length - flagged} clean, ${flagged} flagged, ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    fx.dispose();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await main();
  } catch (error) {
    console.error(`bad-inputs: ${(error as Error).message}`);
    process.exit(2);
  }
}
