/*
 * Shared by the trial tests: run the compiled trial program (dist/trial/main.js) as a process and
 * read back what it printed, and make parameter dicts of any space and size.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Random } from '../common/random.js';
import { decisions, fromTokens, toParams, type Params, type SpaceSpec } from '../search-spaces/spaces.js';
import { fashionTinyDir } from './fashion-tiny.js';

export const REPO = resolve(import.meta.dirname, '..');
export const TRIAL_MAIN = join(REPO, 'dist', 'trial', 'main.js');
/** CI checks the project out with ../shared beside it. */
export const KJV_DIR = resolve(REPO, '..', 'shared', 'data', 'kjv-ptb');

/** Micro supernet of two 2-channel cells on two tiny Fashion-MNIST images per class: about a second of compute per trial. */
export const TINY_MICRO = ['--data-dir', fashionTinyDir(), '--subset', '2', '--channels', '2', '--layers', '0', '--batch-size', '8', '--eval-batch-size', '10'];

export function requireDist(): void {
  if (!existsSync(TRIAL_MAIN)) throw new Error(`${TRIAL_MAIN} is missing: run \`npx tsc -p .\` first`);
}

export interface TrialRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Standalone metric lines (`metric <record>`), with the value decoded. */
  metrics: { type: string; sequence: number; parameter_id: number | null; value: Record<string, number> }[];
}

/** Runs `node dist/trial/main.js <args>` in `cwd` with the environment `env` (default: no NNI variables). */
export function runTrial(args: string[], cwd: string, env: NodeJS.ProcessEnv = withoutNni(process.env)): Promise<TrialRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [TRIAL_MAIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += String(chunk)));
    child.stderr.on('data', (chunk) => (stderr += String(chunk)));
    child.on('error', fail);
    child.on('close', (code) => {
      const metrics = stdout
        .split('\n')
        .filter((line) => line.startsWith('metric '))
        .map((line) => {
          const record = JSON.parse(line.slice('metric '.length)) as { type: string; sequence: number; parameter_id: number | null; value: string };
          return { ...record, value: JSON.parse(record.value) as Record<string, number> };
        });
      done({ code, stdout, stderr, metrics });
    });
  });
}

export function withoutNni(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('NNI_')));
}

/** A seeded random architecture of `spec` as NNI parameters. */
export function randomParams(spec: SpaceSpec, seed: number): Params {
  const random = new Random(seed);
  return toParams(fromTokens(spec, decisions(spec).map((d) => random.int(d.choices.length))), spec);
}
