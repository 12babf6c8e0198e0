/*
 * `nni-enas bench`: benchmarks that run without NNI and write their results as run directories
 * (common/results.ts) for `nni-enas compare`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { benchController, benchDefaultTrial, benchSupernets, formatReport, type BenchReport, type SupernetSpace } from '../bench/supernet.js';
import { benchTunerStartup, DEFAULT_BUSY, formatStartup, realPython, startupRows, THIS_REPO } from '../bench/tuner-startup.js';
import { benchTrialStart, formatTrialStart, TRIAL_START_SPACES, writeTrialStartJson, type TrialStartSpace } from '../bench/trial-start.js';
import { BACKENDS, type BackendName } from '../trial/backend.js';
import { defaultNb201TablePath } from '../trial/nb201-table.js';
import { searchQualityCommand } from './search-quality.js';
import { rankingCommand } from './ranking.js';

/**
 * A handler whose failures are one line and exit status 2, as cli/main.ts does: yargs would answer
 * a rejected handler with its usage text and a stack trace.
 */
function inOneLine<A>(run: (args: A) => Promise<void>): (args: A) => Promise<void> {
  return async (args) => {
    try {
      await run(args);
    } catch (error) {
      console.error(`nni-enas: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 2;
    }
  };
}

interface TunersArgs {
  table?: string;
  seeds: number;
  budget: number;
  strategies: ('enas' | 'random')[];
  out: string;
  'learning-rate'?: number;
  'num-aggregate'?: number;
}

const tunersCommand: CommandModule<object, TunersArgs> = {
  command: 'tuners',
  describe: 'ENAS controller vs. uniform random on the NAS-Bench-201 table: one run directory per (strategy, seed)',
  builder: (y) =>
    y
      .option('table', { type: 'string', describe: 'NAS-Bench-201 CSV (default: ../shared/data/nasbench201/nb201-cifar10valid.csv)' })
      .option('seeds', { type: 'number', default: 20, describe: 'runs per strategy (seeds 0…n−1)' })
      .option('budget', { type: 'number', default: 200, describe: 'table queries per run' })
      .option('strategies', { type: 'string', array: true, choices: ['enas', 'random'] as const, default: ['enas', 'random'] as ('enas' | 'random')[], describe: 'controller policies to run' })
      .option('out', { type: 'string', demandOption: true, describe: 'directory for the run directories (must not hold these runs yet)' })
      .option('learning-rate', { type: 'number', describe: "controller Adam learning rate (default: the controller's NB201 default)" })
      .option('num-aggregate', { type: 'number', describe: 'rewards per controller update (default: the controller\'s NB201 default)' })
      .example('$0 bench tuners --seeds 20 --budget 200 --out runs/nb201 && $0 compare runs/nb201 --report-extra test --out report/', 'benchmark, then report test accuracy of the best-by-validation cell')
      .example('$0 bench tuners --strategies enas --learning-rate 0.05 --num-aggregate 1 --out runs/enas-lr0.05', 'a controller that learns faster within a small budget'),
  handler: inOneLine(async (args) => {
    await benchTuners(args);
  }),
};

async function benchTuners(args: TunersArgs): Promise<void> {
  for (const [name, value] of [['--seeds', args.seeds], ['--budget', args.budget]] as const)
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  const tablePath = args.table ?? defaultNb201TablePath();
  if (!existsSync(tablePath)) throw new Error(`no NAS-Bench-201 table at ${tablePath}; pass --table`);
  // Loaded here so that other commands do not pay for TensorFlow.js at start-up.
  const { runTunerBenchmark } = await import('../bench/tuners.js');
  const dirs = await runTunerBenchmark({
    tablePath,
    strategies: [...new Set(args.strategies)],
    seeds: args.seeds,
    budget: args.budget,
    out: args.out,
    controller: {
      ...(args['learning-rate'] !== undefined && { learningRate: args['learning-rate'] }),
      ...(args['num-aggregate'] !== undefined && { numAggregate: args['num-aggregate'] }),
    },
    log: (line) => console.error(line),
  });
  console.error(`wrote ${dirs.length} run directories under ${args.out}; compare them with: nni-enas compare ${args.out} --report-extra test`);
}

interface SupernetArgs {
  space: SupernetSpace[];
  backends: BackendName[];
  rounds: number;
  steps: number;
  'torch-python': string[];
  'torch-threads': number[];
  json?: string;
}

const supernetOptions = (y: Argv) =>
  y
    .option('backends', {
      type: 'string',
      array: true,
      choices: BACKENDS,
      default: ['tensorflow', 'wasm'] as BackendName[],
      describe: 'TensorFlow.js backends to measure (absent ones are reported and skipped; cpu is a pure-JS reference, ~50× slower than wasm)',
    })
    .option('rounds', { type: 'number', default: 4, describe: 'interleaved rounds: in each, every implementation runs in turn, in rotating order' })
    .option('steps', { type: 'number', default: 2, describe: 'timed training steps per implementation and round, after a warm-up (inference scores at least 10 architectures)' })
    .option('torch-python', { type: 'string', array: true, default: [] as string[], describe: 'a python with torch to compare with (repeatable); Debian\'s python3-torch (/usr/bin/python3) is added when present' })
    .option('torch-threads', { type: 'number', array: true, default: [1, 2], describe: 'thread counts each PyTorch runs at' })
    .option('json', { type: 'string', describe: 'also write the rows as JSON lines to this file' });

/** The one-line error for a bad --rounds, --steps or --torch-threads, if any. */
function checkSupernetArgs(args: Omit<SupernetArgs, 'space'>): void {
  for (const [name, values] of [['--rounds', [args.rounds]], ['--steps', [args.steps]], ['--torch-threads', args['torch-threads']]] as const)
    for (const value of values) if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
}

const supernetOptionsOf = (args: Omit<SupernetArgs, 'space'>, spaces: SupernetSpace[], log: (line: string) => void) => ({
  spaces,
  backends: args.backends,
  rounds: args.rounds,
  steps: args.steps,
  torchPythons: args['torch-python'],
  torchThreads: [...new Set(args['torch-threads'])],
  log,
});

function report(result: BenchReport, json?: string): void {
  console.log(formatReport(result));
  const lines = result.rows.map((row) => JSON.stringify(row)).join('\n') + '\n';
  if (json) writeFileSync(json, lines);
  else process.stdout.write(lines);
}

const supernetCommand: CommandModule<object, SupernetArgs> = {
  command: 'supernet',
  describe: 'supernet train/inference throughput and GFLOP/s per backend against the identical PyTorch model, interleaved; store save/load, process start-up',
  builder: (y) =>
    supernetOptions(y)
      .option('space', { type: 'string', array: true, choices: ['micro', 'macro', 'rnn'] as const, default: ['micro'] as SupernetSpace[] })
      .example('$0 bench supernet --space micro rnn', 'micro on Fashion-MNIST shapes (28×28×1, batch 64, 20 channels) and the KJV-sized RNN')
      .example('$0 bench supernet --torch-python ~/venv/bin/python', 'also against the PyTorch installed there'),
  handler: inOneLine(async (args) => {
    checkSupernetArgs(args);
    report(await benchSupernets(supernetOptionsOf(args, args.space, (line) => console.error(line))), args.json);
  }),
};

interface StartupArgs {
  starts: number;
  busy: number;
  repo: string[];
  python: string;
  json?: string;
}

const startupCommand: CommandModule<object, StartupArgs> = {
  command: 'startup',
  describe: "tuner spawn → WebSocket connected (NNI allows 10 s) and → ID, through `python3 -m nni` as NNI starts it, idle and oversubscribed",
  builder: (y) =>
    y
      .option('starts', { type: 'number', default: 20, describe: 'tuner starts per condition' })
      .option('busy', { type: 'number', default: DEFAULT_BUSY, describe: 'busy-loop processes while the oversubscribed starts run (0: idle only); started and killed here' })
      .option('repo', { type: 'string', array: true, default: [THIS_REPO], describe: 'built checkouts whose tuners are started, taking turns start by start (to compare versions)' })
      .option('python', { type: 'string', default: 'python3', describe: "python3 to run (`nni` is the tests' stand-in package); its sys.executable is used, as nnictl passes it to NNI" })
      .option('json', { type: 'string', describe: 'also write each condition with every start\'s times as a JSON line to this file' })
      .example('$0 bench startup --starts 20 --busy 10', '20 starts idle and 20 with 10 busy loops')
      .example('$0 bench startup --repo /tmp/before --repo .', 'a checkout of an older commit (npm ci && npm run build there) against this one'),
  handler: inOneLine(async (args) => {
    for (const [name, value, min] of [['--starts', args.starts, 1], ['--busy', args.busy, 0]] as const)
      if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${value}`);
    const conditions = await benchTunerStartup({ starts: args.starts, busy: args.busy, repos: args.repo.map((repo) => resolve(repo)), python: realPython(args.python), log: (line) => console.error(line) });
    console.log(formatStartup(conditions));
    if (args.json) writeFileSync(args.json, conditions.map((c) => JSON.stringify(c)).join('\n') + '\n');
  }),
};

interface TrialStartArgs {
  runs: number;
  space: TrialStartSpace[];
  repo: string[];
  backend: BackendName;
  json?: string;
}

const trialStartCommand: CommandModule<object, TrialStartArgs> = {
  command: 'trial-start',
  describe: 'shared-mode trial: process start → first step, phase by phase (a fresh process per trial, the store present)',
  builder: (y) =>
    y
      .option('runs', { type: 'number', default: 5, describe: 'timed trials per checkout and space (after one that writes the store)' })
      .option('space', { type: 'string', array: true, choices: TRIAL_START_SPACES, default: [...TRIAL_START_SPACES] as TrialStartSpace[], describe: 'spaces to start' })
      .option('repo', { type: 'string', array: true, default: [THIS_REPO], describe: 'built checkouts whose trials are started, taking turns trial by trial (to compare versions)' })
      .option('backend', { type: 'string', choices: BACKENDS, default: 'wasm' as BackendName, describe: 'the trials\' --backend' })
      .option('json', { type: 'string', describe: 'also write every trial\'s phases as JSON lines to this file' })
      .example('$0 bench trial-start --repo /tmp/before --repo .', 'an older checkout (built) against this one'),
  handler: inOneLine(async (args) => {
    if (!Number.isInteger(args.runs) || args.runs < 1) throw new Error(`--runs must be a positive integer, got ${args.runs}`);
    const options = { spaces: [...new Set(args.space)], runs: args.runs, repos: args.repo.map((repo) => resolve(repo)), backend: args.backend, log: (line: string) => console.error(line) };
    const results = benchTrialStart(options);
    console.log(formatTrialStart(results, args.backend));
    if (args.json) writeTrialStartJson(args.json, results);
  }),
};

interface FaultsArgs {
  kills: number;
  'tuner-kills': number;
  writers: number;
  rounds: number;
  seed: number;
}

const faultsCommand: CommandModule<object, FaultsArgs> = {
  command: 'faults',
  describe: 'the fault figures: weight-store commits SIGKILLed and concurrent writers, then the tuner SIGKILLed and resumed as NNI resumes it',
  builder: (y) =>
    y
      .option('kills', { type: 'number', default: 100, describe: 'SIGKILLs of a process committing to the weight store' })
      .option('tuner-kills', { type: 'number', default: 20, describe: 'SIGKILLs of the tuner mid-experiment, each followed by a resume' })
      .option('writers', { type: 'number', default: 4, describe: 'concurrent store writers' })
      .option('rounds', { type: 'number', default: 5, describe: 'commits per concurrent writer' })
      .option('seed', { type: 'number', default: 0, describe: 'seeds where the kills land' })
      .example('$0 bench faults', 'the figures of README "Faults" and docs/faults.md'),
  handler: inOneLine(async (args) => {
    for (const [name, value, min] of [['--kills', args.kills, 1], ['--tuner-kills', args['tuner-kills'], 1], ['--writers', args.writers, 1], ['--rounds', args.rounds, 1], ['--seed', args.seed, 0]] as const)
      if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${value}`);
    const log = (line: string) => console.error(line);
    const { runStoreFaults, formatStoreFaults } = await import('../bench/store-faults.js');
    const store = await runStoreFaults({ kills: args.kills, writers: args.writers, rounds: args.rounds, seed: args.seed, log });
    console.log(`${formatStoreFaults(store)}\n`);
    const { runTunerFaults, formatTunerFaults } = await import('../bench/fault-tuner.js');
    const tuner = await runTunerFaults({ kills: args['tuner-kills'], seed: args.seed, log });
    console.log(formatTunerFaults(tuner));
    const storeBad = store.corrupt || store.inconsistent || store.concurrent.updatesLanded !== store.concurrent.updatesExpected;
    const tunerBad = tuner.matched < tuner.kills || tuner.idReuse || tuner.lostRewards || tuner.doubleCounted || tuner.failedCounted;
    if (storeBad || tunerBad) process.exitCode = 1;
  }),
};

const allCommand: CommandModule<object, Omit<SupernetArgs, 'space'>> = {
  command: 'all',
  describe: 'every performance benchmark: supernets (all spaces), controller latency, trial start-up, store I/O, NNI-overhead share of a default trial, tuner start-up',
  builder: (y) => supernetOptions(y).example('$0 bench all --json bench-all.jsonl', 'the table on stdout, JSON lines in a file'),
  handler: inOneLine(async (args) => {
    const log = (line: string) => console.error(line);
    checkSupernetArgs(args);
    // Loaded here: the controller brings TensorFlow.js, which other commands need not pay for.
    const { CONTROLLER_BACKEND } = await import('../tuner/controller.js');
    const supernets = await benchSupernets(supernetOptionsOf(args, ['micro', 'macro', 'rnn'], log));
    const rows = [
      ...supernets.rows,
      ...benchController(CONTROLLER_BACKEND, log),
      ...benchDefaultTrial(log),
      ...startupRows(await benchTunerStartup({ starts: 20, busy: DEFAULT_BUSY, repos: [THIS_REPO], python: realPython(), log })),
    ];
    report({ rows, notes: supernets.notes }, args.json);
  }),
};

export const benchCommand: CommandModule = {
  command: 'bench <benchmark>',
  describe: 'benchmarks without NNI that write run directories for `compare`',
  builder: (y) => y.command(tunersCommand).command(supernetCommand).command(startupCommand).command(trialStartCommand).command(faultsCommand).command(allCommand).command(searchQualityCommand).command(rankingCommand).demandCommand(1, 'name a benchmark; see --help'),
  // The subcommands do the work.
  handler: () => {},
};
