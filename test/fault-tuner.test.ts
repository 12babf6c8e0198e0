/*
 * The tuner SIGKILLed mid-experiment and resumed as `nnictl resume` does (bench/fault-tuner.ts,
 * two kills of one experiment): the resumed tuner's first checkpoint and proposals equal those of
 * a controller loaded from the checkpoint the kill left, no parameter id is proposed twice, and
 * no completed trial's reward is lost. Needs the compiled dist/ (`npx tsc -p .`).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runTunerFaults } from '../bench/fault-tuner.js';

beforeAll(() => {
  if (!existsSync(join(resolve(import.meta.dirname, '..'), 'dist', 'tuner', 'main.js'))) throw new Error('dist/ is missing: run `npx tsc -p .` first');
});

describe('tuner SIGKILL and resume', () => {
  it('resumes twice with the checkpointed controller, fresh parameter ids and every completed reward', async () => {
    const figures = await runTunerFaults({ kills: 2, seed: 3 });
    expect(figures.resumes).toHaveLength(2);
    // The first kill comes after at least one controller update, so there is a policy to restore.
    expect(figures.resumes[0]!.checkpointUpdates).toBeGreaterThanOrEqual(1);
    for (const resume of figures.resumes) {
      expect(resume.mismatches, `kill ${resume.kill}`).toEqual([]);
      expect(resume.rewardProblems, `kill ${resume.kill}`).toEqual([]);
      expect(Math.min(...resume.resumedIds), `kill ${resume.kill}`).toBeGreaterThanOrEqual(resume.checkpointNextId);
    }
    expect(figures.matched).toBe(2);
    expect(figures.idReuse).toBe(0);
    expect(figures.lostRewards).toBe(0);
    expect(figures.doubleCounted).toBe(0);
    expect(figures.failedCounted).toBe(0);
    expect(figures.finalExit).toBe(0);
  });

  it('refuses a bad kill count in one line naming the flag', async () => {
    await expect(runTunerFaults({ kills: 0, seed: 0 })).rejects.toThrow(/^--kills must be an integer ≥ 1, got 0$/);
  });
});
