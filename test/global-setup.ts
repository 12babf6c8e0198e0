/*
 * Every temporary file of a test run (tests, the trials and tuners they start) goes under one
 * directory, removed when the run ends: the tests' own clean-up misses what a killed process or
 * a failed assertion leaves behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'nni-enas-tests-'));
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
