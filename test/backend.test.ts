/*
 * Backend set-up for data-parallel training: TensorFlow sizes its op thread pool once, when
 * tfjs-node loads, so the limit must be in the environment before any backend is tried. Each case
 * runs in a fresh process (the backend is process-wide); where tfjs-node is absent, as in CI, the
 * set-up falls back to wasm after trying it, so the variable is still set before the attempt.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO } from './trial-helpers.js';

const BACKEND_MODULE = pathToFileURL(join(REPO, 'dist', 'trial', 'backend.js')).href;

/** TF_NUM_INTRAOP_THREADS after setupBackend(undefined, …, { replicas }) in a fresh process, or 'unset'. */
function threadsAfterSetup(replicas: number, given?: string): string {
  const env = { ...process.env };
  delete env.TF_NUM_INTRAOP_THREADS;
  if (given !== undefined) env.TF_NUM_INTRAOP_THREADS = given;
  const script = `
    const { setupBackend } = await import(${JSON.stringify(BACKEND_MODULE)});
    await setupBackend(undefined, () => {}, { replicas: ${replicas} });
    console.log(process.env.TF_NUM_INTRAOP_THREADS ?? 'unset');`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim().split('\n').at(-1)!;
}

describe('setupBackend for replicas', () => {
  it('gives each of several replicas one TensorFlow thread per op, leaves one process the default pool, and keeps a value the user set', () => {
    expect(threadsAfterSetup(2)).toBe('1');
    expect(threadsAfterSetup(1)).toBe('unset');
    expect(threadsAfterSetup(2, '2')).toBe('2');
  });
});
