/*
 * The weight store's part of the fault suite (issue 11), as figures:
 *
 * 1. Kills during commits. A child process commits to a store of 8 MB in a loop, exactly as a
 *    shared-mode trial does (load, change, trial/store.ts `commitUpdate`), and says on stdout,
 *    synchronously, when each commit starts and ends. It is SIGKILLed at a seeded, uniformly
 *    random point from the start of its second commit to 1.25× a commit's duration later, so
 *    kills land before, during and after the lock, the data write and fsync, and the manifest
 *    rename. What the kill hit is read from the disk afterwards (a lock left
 *    behind, a data file the manifest does not name, a version past the last report). After every
 *    kill the store must load with its checksums, hold a committed version (the last reported,
 *    or the next if the kill fell between the rename and the report), a global step and weights
 *    that equal that version's, and the next child must commit (breaking the dead writer's lock).
 * 2. Concurrent writers. W processes commit R rounds each at the same time; writer w's round r
 *    adds 1 to its own element and S to the global step. Afterwards the version is 1 + W·R, the
 *    step W·R·S, and every element is exactly 1: every update landed once, none was lost.
 *
 * The children use commitUpdate itself with synthetic updates, so each update can be told apart;
 * the trial's own use of it is covered by test/trial-shared.test.ts and test/store.test.ts.
 *
 *   node dist/bench/store-faults.js [--kills 100] [--writers 4] [--rounds 5] [--seed 0]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Random } from '../common/random.js';
import { commitUpdate, initStore, loadStore, LOCK_FILE, readStoreManifest, type StoreTensor } from '../trial/store.js';

const THIS_FILE = fileURLToPath(import.meta.url);
/** The children run the compiled script, also when this runs as TypeScript under vitest (npm test builds first). */
const CHILD_SCRIPT = THIS_FILE.endsWith('.js') ? THIS_FILE : join(dirname(THIS_FILE), '..', 'dist', 'bench', 'store-faults.js');
const WEIGHTS = 'w';
const STEP = 'trial/global_step';
/** 2M floats, 8 MB: a commit (write, fsync, rename) then takes tens of milliseconds. */
const KILL_STORE_ELEMENTS = 2_000_000;
const STEPS_PER_COMMIT = 20;

export interface StoreFaultOptions {
  kills: number;
  writers: number;
  rounds: number;
  seed: number;
  log?: (line: string) => void;
}

/** Where a kill landed, read from the disk after it. */
export type KillLanding = 'outside a commit (before its lock, or after its report)' | 'holding the lock, before the data file' | 'data file written or partial, manifest not swapped' | 'manifest swapped, before the report';

export interface StoreFaultFigures {
  kills: number;
  /** Stores that failed to load or to verify their checksums after a kill (must be 0). */
  corrupt: number;
  /** Stores whose version, global step or weights were not those of a committed version (must be 0). */
  inconsistent: number;
  landings: Record<KillLanding, number>;
  /** Kills that left a lock behind, and how many of those the next writer broke. */
  staleLocks: number;
  staleLocksBroken: number;
  commitsBeforeKills: number;
  concurrent: { writers: number; rounds: number; version: number; expectedVersion: number; step: number; expectedStep: number; updatesLanded: number; updatesExpected: number; mergedCommits: number };
  seconds: number;
}

const tensor = (shape: number[], data: Float32Array | Int32Array): StoreTensor => ({ shape, data });

/** The child: commits forever (kill mode) or `rounds` times (writer mode), one stdout line per commit. */
async function child(args: { dir: string; writer?: number; rounds?: number }): Promise<void> {
  const log = (line: string) => writeSync(1, `${line}\n`);
  const quiet = { log: (line: string) => writeSync(2, `${line}\n`) };
  for (let round = 0; args.rounds === undefined || round < args.rounds; round++) {
    const base = loadStore(args.dir);
    const trained = new Map<string, StoreTensor>();
    for (const [name, t] of base.tensors) trained.set(name, tensor([...t.shape], t.data.slice()));
    const weights = trained.get(WEIGHTS)!.data;
    if (args.writer === undefined) for (let i = 0; i < weights.length; i++) weights[i]! += 1;
    else weights[args.writer * args.rounds! + round]! += 1;
    trained.get(STEP)!.data[0]! += STEPS_PER_COMMIT;
    log('committing');
    const start = performance.now();
    const { version, concurrentCommits } = await commitUpdate(args.dir, base.version, base.tensors, trained, quiet);
    log(`committed ${version} ${concurrentCommits} ${(performance.now() - start).toFixed(1)}`);
  }
}

/** Checks the store after a kill; returns the version it holds, or a problem. */
function verify(dir: string, lastReported: number): { version: number } | { problem: 'corrupt' | 'inconsistent'; detail: string } {
  let snapshot;
  try {
    snapshot = loadStore(dir);
  } catch (error) {
    return { problem: 'corrupt', detail: (error as Error).message };
  }
  const { version } = snapshot;
  const step = snapshot.tensors.get(STEP)!.data[0];
  const weights = snapshot.tensors.get(WEIGHTS)!.data;
  const commits = version - 1;
  if (version !== lastReported && version !== lastReported + 1)
    return { problem: 'inconsistent', detail: `version ${version} after the report of ${lastReported}` };
  if (step !== commits * STEPS_PER_COMMIT) return { problem: 'inconsistent', detail: `global step ${step} at version ${version}` };
  if (!weights.every((w) => w === commits)) return { problem: 'inconsistent', detail: `weights not all ${commits} at version ${version}` };
  return { version };
}

function landing(dir: string, lastReported: number, version: number): KillLanding {
  if (version > lastReported) return 'manifest swapped, before the report';
  const named = readStoreManifest(dir).dataFile;
  const orphan = readdirSync(dir).some((f) => f.startsWith('weights-') && f !== named);
  if (orphan) return 'data file written or partial, manifest not swapped';
  return existsSync(join(dir, LOCK_FILE)) ? 'holding the lock, before the data file' : 'outside a commit (before its lock, or after its report)';
}

/** Runs one child and kills it `delayMs` after it starts its second commit (the first one breaks any stale lock). */
async function killOnce(dir: string, delayMs: number): Promise<{ reported: number[] }> {
  const proc = spawn(process.execPath, [CHILD_SCRIPT, '--child', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const reported: number[] = [];
  let stderr = '';
  let buffered = '';
  let armed = false;
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('committed ')) reported.push(Number(line.split(' ')[1]));
        else if (line === 'committing' && reported.length === 1 && !armed) {
          armed = true;
          setTimeout(() => {
            proc.kill('SIGKILL');
            resolve();
          }, delayMs);
        }
      }
    });
    proc.on('exit', (code) => (armed ? resolve() : reject(new Error(`commit child exited ${code} before its second commit: ${stderr.trim()}`))));
  });
  await exited;
  return { reported };
}

/** Median duration of one commitUpdate call (lock, write, fsync, rename, cleanup), from 5 uninterrupted commits. */
function commitDurationMs(dir: string): number {
  const run = spawnSync(process.execPath, [CHILD_SCRIPT, '--child', dir, '--rounds', '5'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`commit child failed: ${run.stderr.trim()}`);
  const durations = run.stdout.split('\n').filter((line) => line.startsWith('committed ')).map((line) => Number(line.split(' ')[3]));
  return durations.sort((a, b) => a - b)[2]!;
}

async function freshStore(elements: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nni-enas-store-faults-'));
  await initStore(dir, new Map([[WEIGHTS, tensor([elements], new Float32Array(elements))], [STEP, tensor([], Int32Array.of(0))]]), { model: 'store-faults' });
  return dir;
}

export async function runStoreFaults(options: StoreFaultOptions): Promise<StoreFaultFigures> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const random = new Random(options.seed);
  const landings: Record<KillLanding, number> = {
    'outside a commit (before its lock, or after its report)': 0,
    'holding the lock, before the data file': 0,
    'data file written or partial, manifest not swapped': 0,
    'manifest swapped, before the report': 0,
  };
  let [corrupt, inconsistent, staleLocks, staleLocksBroken, commitsBeforeKills] = [0, 0, 0, 0, 0];
  const killDir = await freshStore(KILL_STORE_ELEMENTS);
  try {
    // Kills fall uniformly over the commit and a little past it (×1.25), where the report is written.
    const commitMs = commitDurationMs(killDir);
    let lastReported = loadStore(killDir).version;
    let lockLeft = false;
    for (let k = 0; k < options.kills; k++) {
      const { reported } = await killOnce(killDir, random.next() * 1.25 * commitMs);
      // A child that committed got the lock, so it broke the one a killed writer left.
      if (lockLeft && reported.length > 0) staleLocksBroken++;
      commitsBeforeKills += reported.length;
      lastReported = reported.at(-1)!;
      const checked = verify(killDir, lastReported);
      if ('problem' in checked) {
        if (checked.problem === 'corrupt') corrupt++;
        else inconsistent++;
        log(`kill ${k + 1}: ${checked.problem}: ${checked.detail}`);
        break;
      }
      const landed = landing(killDir, lastReported, checked.version);
      landings[landed]++;
      lockLeft = existsSync(join(killDir, LOCK_FILE));
      if (lockLeft) staleLocks++;
      lastReported = checked.version;
      log(`kill ${k + 1}/${options.kills}: ${landed}; store at version ${checked.version}, checksums and contents verified`);
    }
    // The last kill's lock, if any, is broken by the next writer too.
    if (lockLeft) {
      const after = spawnSync(process.execPath, [CHILD_SCRIPT, '--child', killDir, '--rounds', '1'], { encoding: 'utf8' });
      if (after.status === 0) staleLocksBroken++;
    }
  } finally {
    rmSync(killDir, { recursive: true, force: true });
  }

  const { writers, rounds } = options;
  const concurrentDir = await freshStore(writers * rounds);
  try {
    log(`${writers} writers × ${rounds} rounds at once`);
    const procs = Array.from({ length: writers }, (_, w) => spawn(process.execPath, [CHILD_SCRIPT, '--child', concurrentDir, '--writer', String(w), '--rounds', String(rounds)], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let mergedCommits = 0;
    await Promise.all(
      procs.map(
        (proc, w) =>
          new Promise<void>((resolve, reject) => {
            let out = '';
            let err = '';
            proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
            proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
            proc.on('exit', (code) => {
              mergedCommits += out.split('\n').filter((line) => line.startsWith('committed ') && line.split(' ')[2] !== '0').length;
              return code === 0 ? resolve() : reject(new Error(`writer ${w} exited ${code}: ${err.trim()}`));
            });
          }),
      ),
    );
    const final = loadStore(concurrentDir);
    const weights = final.tensors.get(WEIGHTS)!.data;
    return {
      kills: options.kills,
      corrupt,
      inconsistent,
      landings,
      staleLocks,
      staleLocksBroken,
      commitsBeforeKills,
      concurrent: {
        writers,
        rounds,
        version: final.version,
        expectedVersion: 1 + writers * rounds,
        step: final.tensors.get(STEP)!.data[0]!,
        expectedStep: writers * rounds * STEPS_PER_COMMIT,
        updatesLanded: weights.filter((w) => w === 1).length,
        updatesExpected: writers * rounds,
        mergedCommits,
      },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(concurrentDir, { recursive: true, force: true });
  }
}

export function formatStoreFaults(f: StoreFaultFigures): string {
  const c = f.concurrent;
  return [
    '| store fault | figure |',
    '| :-- | :-- |',
    `| SIGKILLs during a loop of commits (8 MB store) | ${f.kills} |`,
    ...Object.entries(f.landings).map(([where, n]) => `| … landed ${where} | ${n} |`),
    `| stores corrupt after a kill (fail to load or to verify) | **${f.corrupt}** |`,
    `| stores not at a committed version, step and weights | **${f.inconsistent}** |`,
    `| locks left by a killed writer / broken by the next writer | ${f.staleLocks} / ${f.staleLocksBroken} |`,
    `| commits completed between the kills | ${f.commitsBeforeKills} |`,
    `| ${c.writers} concurrent writers × ${c.rounds} rounds: store version | ${c.version} (expected ${c.expectedVersion}) |`,
    `| … global step | ${c.step} (expected ${c.expectedStep}) |`,
    `| … updates present exactly once | ${c.updatesLanded} of ${c.updatesExpected} (${c.mergedCommits} commits merged onto concurrent ones) |`,
    `| time | ${f.seconds.toFixed(0)} s |`,
  ].join('\n');
}

if (process.argv[1] === THIS_FILE) {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      writer: { type: 'string' },
      rounds: { type: 'string' },
      kills: { type: 'string', default: '100' },
      writers: { type: 'string', default: '4' },
      seed: { type: 'string', default: '0' },
    },
  });
  if (values.child) {
    await child({ dir: values.child, writer: values.writer === undefined ? undefined : Number(values.writer), rounds: values.rounds === undefined ? undefined : Number(values.rounds) });
  } else {
    const numbers = { kills: Number(values.kills), writers: Number(values.writers), rounds: Number(values.rounds ?? 5), seed: Number(values.seed) };
    for (const [name, value] of Object.entries(numbers))
      if (!Number.isInteger(value) || value < (name === 'seed' ? 0 : 1)) {
        console.error(`store-faults: --${name} must be a positive integer, got ${value}`);
        process.exit(2);
      }
    const figures = await runStoreFaults({ ...numbers, log: (line) => console.error(line) });
    console.log(formatStoreFaults(figures));
    process.exitCode = figures.corrupt || figures.inconsistent || figures.concurrent.updatesLanded !== figures.concurrent.updatesExpected ? 1 : 0;
  }
}
