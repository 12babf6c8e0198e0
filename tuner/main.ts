#!/usr/bin/env node
/*
 * Node entry point of the NNI tuner. NNI's manager starts `python -m nni --exp_params <b64>`;
 * tuner/nni_enas_tuner.py replaces that process with this one (same PID, same argv tail, same
 * environment, NNI-PROTOCOL.md a.1.1). Here: read the NNI_* environment, set up logging, connect
 * to the manager, and only then load the rest: NNI fails the experiment if the tuner has not
 * connected within 10 s of its spawn, and on a busy machine TensorFlow.js, the wasm backend and
 * the controller alone can take longer. So this module imports nothing heavier than the transport
 * (ws); the tuner loop (tuner/tuner.ts) and, in its load step, the classArgs (tuner/args.ts), the
 * backend and the ENAS controller (tuner/controller.ts) are imported once connected. Commands
 * that arrive meanwhile wait in the transport; a failed load is reported with ER at IN.
 */
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WsTransport, type Logger } from './transport.js';
import type { StrategySetup } from './tuner.js';

const LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'fatal'] as const;
type Level = (typeof LEVELS)[number];

/** NNI-style log lines to stderr and to NNI_LOG_DIRECTORY/nni-enas-tuner.log, at NNI_LOG_LEVEL. */
function createLogger(env: NodeJS.ProcessEnv): Logger {
  const threshold = LEVELS.indexOf((env.NNI_LOG_LEVEL ?? 'info') as Level);
  const minimum = threshold < 0 ? LEVELS.indexOf('info') : threshold;
  let file: number | undefined;
  let fileProblem = '';
  if (env.NNI_LOG_DIRECTORY) {
    try {
      mkdirSync(env.NNI_LOG_DIRECTORY, { recursive: true });
      file = openSync(join(env.NNI_LOG_DIRECTORY, 'nni-enas-tuner.log'), 'a');
    } catch (error) {
      fileProblem = (error as Error).message;
    }
  }
  // Synchronous writes: the process may exit right after a line (TE, fatal errors).
  const write = (level: Level, text: string) => {
    if (LEVELS.indexOf(level) < minimum) return;
    const line = `[${new Date().toISOString()}] ${level.toUpperCase()} (nni-enas-tuner) ${text}\n`;
    process.stderr.write(line);
    if (file !== undefined) writeSync(file, line);
  };
  if (fileProblem) write('warning', `no log file in ${env.NNI_LOG_DIRECTORY}: ${fileProblem}`);
  return {
    trace: (text) => write('trace', text),
    debug: (text) => write('debug', text),
    info: (text) => write('info', text),
    warning: (text) => write('warning', text),
    error: (text) => write('error', text),
  };
}

/** argv is NNI's dispatcher command tail: `--exp_params <b64>`, possibly after `-m nni`. */
function readClassArgs(argv: string[]): unknown {
  const { values } = parseArgs({
    args: argv,
    options: { exp_params: { type: 'string' }, module: { type: 'string', short: 'm' } },
    strict: true,
  });
  if (!values.exp_params) throw new Error('missing --exp_params (NNI passes the experiment config there)');
  let config: unknown;
  try {
    config = JSON.parse(Buffer.from(values.exp_params, 'base64').toString('utf8'));
  } catch (error) {
    throw new Error(`--exp_params is not base64 of a JSON experiment config: ${(error as Error).message}`);
  }
  return (config as { tuner?: { classArgs?: unknown } } | null)?.tuner?.classArgs;
}

/** The classArgs checked, then TensorFlow.js on the controller's backend and the controller. */
async function loadController(log: Logger): Promise<StrategySetup> {
  const started = performance.now();
  const { controllerOptions, parseClassArgs } = await import('./args.js');
  let args: ReturnType<typeof parseClassArgs>;
  try {
    args = parseClassArgs(readClassArgs(process.argv.slice(2)));
  } catch (error) {
    throw new Error(`invalid tuner configuration: ${(error as Error).message}`);
  }
  const [{ setupBackend }, { CONTROLLER_BACKEND, createController }] = await Promise.all([import('../trial/backend.js'), import('./controller.js')]);
  let backend: Awaited<ReturnType<typeof setupBackend>>;
  try {
    backend = await setupBackend(CONTROLLER_BACKEND, (line) => log.warning(line));
  } catch (error) {
    throw new Error(`cannot start TensorFlow.js for the controller: ${(error as Error).message}`);
  }
  log.info(`controller loaded (TensorFlow.js ${backend.detail}) in ${Math.round(performance.now() - started)} ms`);
  return {
    createStrategy: (spec) => createController(spec, controllerOptions(spec, args.controller)),
    reward: args.reward,
    warmup: { trials: args.warmupTrials, seed: args.controller.seed ?? 0 },
  };
}

const env = process.env;
const log = createLogger(env);
log.info(`nni-enas tuner: pid ${process.pid}, node ${process.version}, NNI_MODE=${env.NNI_MODE ?? '(unset)'}`);

const url = env.NNI_TUNER_COMMAND_CHANNEL;
if (!url) {
  log.error('NNI_TUNER_COMMAND_CHANNEL is not set: this program is started by NNI through tuner/nni_enas_tuner.py');
  process.exit(1);
}
if (!env.NNI_CHECKPOINT_DIRECTORY) log.warning('NNI_CHECKPOINT_DIRECTORY is not set: no checkpoints, no resume');

const transport = new WsTransport(url, { log });
transport.start();
await transport.firstOpen;
const { runTuner } = await import('./tuner.js');
const code = await runTuner({
  transport,
  load: () => loadController(log),
  checkpointDir: env.NNI_CHECKPOINT_DIRECTORY,
  resume: env.NNI_MODE === 'resume',
  log,
});
process.exit(code);
