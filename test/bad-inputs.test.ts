/*
 * A few cases of the bad-input table (bench/bad-inputs.ts, docs/faults.md "Bad input"), one per
 * program and a damaged store, run through the same code: each must exit non-zero with one line
 * naming the flag or path at fault and leave every watched file as it was. Needs `npm run build`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASES, Fixtures, requireBuild, runCases, type CaseResult } from '../bench/bad-inputs.js';

const PICKED: Record<string, RegExp> = {
  'tuner-unknown-key': /^fatal: invalid tuner configuration: classArgs: .*"learning_rat"/,
  'trial-store-flipped-byte': /^nni-enas trial: .*weights-v\d+-[0-9a-f]+\.bin: checksum mismatch/,
  'trial-nan-loss': /^nni-enas trial: weight store .* holds non-finite values in "stem\/w"/,
  'trial-idx-truncated-gzip': /^nni-enas trial: .*train-images-idx3-ubyte\.gz: truncated or corrupt gzip/,
  'search-config-missing': /^nni-enas: .*config\.yml: no such file/,
  'compare-not-json': /export\.json: not JSON/,
};

const fixtures = new Fixtures();
const results = new Map<string, CaseResult>();

beforeAll(async () => {
  requireBuild();
  const cases = CASES.filter((c) => c.id in PICKED);
  for (const result of await runCases(cases, fixtures)) results.set(result.id, result);
});

afterAll(() => fixtures.dispose());

describe('bad input is refused in one line and writes nothing', () => {
  for (const [id, message] of Object.entries(PICKED))
    it(id, () => {
      const result = results.get(id)!;
      expect(result.status).toMatch(/^[1-9]\d*$/);
      expect(result.message).toMatch(message);
      expect(result.lines).toBe(1);
      expect(result.namesIt).toBe(true);
      expect(result.changes).toEqual([]);
      expect(result.problems).toEqual([]);
    });

  it('the tuner also reports it to the manager (ER)', () => {
    expect(results.get('tuner-unknown-key')!.reportedToManager).toBe(true);
  });
});
