/*
 * One trial (started by trial/main.ts, the program NNI runs once per architecture): read the
 * options, take the one parameter dict from NNI (or --params without NNI), check that it is an
 * architecture of one of our spaces, write its files, run the mode, report the metrics.
 * Any failure is one line on stderr and a non-zero exit, so NNI marks the trial FAILED and the
 * tuner gives it no reward; a bad parameter dict is refused before anything is written.
 */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { fromParams, specOfParams } from '../search-spaces/spaces.js';
import { checkOnReadAheadWorker } from './prefetch.js';
import { readAhead } from './read-ahead.js';
import { defaultStoreDir, loadSharedStore } from './shared-store.js';
import { channelFromEnvironment, type ParameterRecord } from './channel/index.js';
import { addTrialOptions, checkOptionsForSpace, toTrialOptions, usageFailure, UsageError, type TrialOptions } from './options.js';
import { architectureLines, outputDirectory, Phases, writeArchitectureFiles, type Architecture } from './outputs.js';
import type { RunContext } from './task.js';

const print = (line: string): void => void process.stdout.write(`${line}\n`);

/** An error as one line, with its cause when it has one (fetch says only "fetch failed"). */
function oneLine(error: unknown): string {
  const first = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];
  const cause = error instanceof Error ? error.cause : undefined;
  return cause === undefined ? first(error) : `${first(error)} (${first(cause)})`;
}

function parseCommandLine(argv: string[]): TrialOptions {
  const raw = addTrialOptions(yargs(argv))
    .scriptName('node dist/trial/main.js')
    .usage('$0 [options]: one NNI trial of an ENAS architecture (parameters from NNI, or --params without NNI)')
    .example('$0 --mode shared --dataset fashion-mnist', 'config.yml: score on the shared supernet, then train it')
    .example(`$0 --mode scratch --epochs 3 --subset 100 --params-file runs/x/architecture.json`, 'retrain one architecture by hand')
    .strict()
    .version(false)
    .help()
    .fail(usageFailure)
    .parseSync() as Record<string, unknown>;
  const positional = (raw._ as unknown[]).map(String);
  if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  return toTrialOptions(raw);
}

/**
 * The standalone parameter dict: --params JSON, or --params-file holding a dict or a trial's
 * architecture.json (whose `parameters` are used), so any trial can be re-run by hand.
 */
function standaloneParameters(options: TrialOptions): unknown {
  let text: string;
  let source: string;
  if (options.params !== undefined) [text, source] = [options.params, '--params'];
  else if (options.paramsFile !== undefined) {
    source = options.paramsFile;
    try {
      text = readFileSync(options.paramsFile, 'utf8');
    } catch (error) {
      throw new UsageError(`--params-file ${options.paramsFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  } else return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${source} is not JSON: ${(error as Error).message}`);
  }
  const record = parsed as { parameters?: unknown; parameter_id?: unknown } | null;
  return record && typeof record === 'object' && 'parameter_id' in record && 'parameters' in record ? record.parameters : parsed;
}

/** The architecture the parameters describe; throws one line naming the offending key. */
function parseArchitecture(record: ParameterRecord): Architecture {
  try {
    const spec = specOfParams(record.parameters);
    return { record, spec, genotype: fromParams(spec, record.parameters) };
  } catch (error) {
    throw new UsageError(`bad parameters (parameter_id ${record.parameter_id}): ${(error as Error).message}`);
  }
}

async function run(readingAhead: Promise<void> | undefined): Promise<void> {
  const options = parseCommandLine(hideBin(process.argv));
  const env = process.env;
  const phases = new Phases();
  const channel = channelFromEnvironment(env, standaloneParameters(options));
  const record = await channel.receiveParameter();
  const architecture = parseArchitecture(record);
  const { spec, genotype } = architecture;
  const dataset = checkOptionsForSpace(options, spec);
  phases.end('start-up');

  const outputDir = outputDirectory(options.output, env);
  print(`nni-enas trial ${channel.trialJobId}: parameter id ${record.parameter_id} (${record.parameter_source}), ${spec.space} space, mode ${options.mode}`);
  print('architecture:');
  for (const line of architectureLines(genotype)) print(`  ${line}`);
  const recordArchitecture = () => {
    writeArchitectureFiles(outputDir, architecture, channel.trialJobId, options.mode);
    print(`architecture files: ${outputDir}/architecture.{json,svg}`);
  };

  const context: RunContext = { options, architecture, metrics: channel, print, phases, recordArchitecture };
  if (options.mode === 'table') {
    const { runTable } = await import('./table-mode.js');
    await runTable(context);
    return;
  }
  const dataReady = readingAhead ?? readAhead(dataset, options.dataDir);
  // TensorFlow.js loads only for the modes that train.
  const { setupBackend } = await import('./backend.js');
  const backend = await setupBackend(options.backend, (line) => print(line), { replicas: options.trialConcurrency });
  print(`backend: ${backend.detail}`);
  phases.end('backend');
  // The weight store is loaded while the worker may still be reading the data; then the worker checks it.
  const storeDir = options.mode === 'shared' ? defaultStoreDir(options.store, env) : undefined;
  const stored = storeDir === undefined ? undefined : loadSharedStore(storeDir, checkOnReadAheadWorker);
  if (stored) phases.end('store load');
  const { createTask } = await import('./task.js');
  await dataReady;
  const task = createTask(options, spec);
  print(`data: ${task.dataSummary}`);
  print(`model: ${task.modelSummary(options.mode === 'shared' ? 'supernet' : 'fixed')}`);
  phases.end('data');
  if (storeDir !== undefined) {
    const { runShared } = await import('./shared-mode.js');
    await runShared(context, task, storeDir, stored);
  } else {
    const { runScratch } = await import('./scratch-mode.js');
    await runScratch(context, task);
  }
}

/**
 * Runs the trial and returns the exit status: 0, or 2 for a usage error and 1 for any other
 * failure, printed as one line. `readingAhead` is the data read-ahead main.ts started, if it could.
 */
export async function runTrial(readingAhead: Promise<void> | undefined): Promise<number> {
  try {
    await run(readingAhead);
    return 0;
  } catch (error) {
    process.stderr.write(`nni-enas trial: ${oneLine(error)}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}
