/*
 * The store's fault figures (bench/store-faults.ts) in small: writers SIGKILLed mid-commit leave
 * a store that loads, verifies and holds a committed version; concurrent writers lose no update.
 */
import { describe, expect, it } from 'vitest';
import { runStoreFaults } from '../bench/store-faults.js';

describe('weight store under faults', () => {
  it('survives SIGKILLs mid-commit and merges concurrent writers without losing an update', async () => {
    const figures = await runStoreFaults({ kills: 8, writers: 3, rounds: 2, seed: 1 });
    expect(figures.corrupt).toBe(0);
    expect(figures.inconsistent).toBe(0);
    expect(Object.values(figures.landings).reduce((a, b) => a + b, 0)).toBe(8);
    expect(figures.staleLocksBroken).toBe(figures.staleLocks);
    const c = figures.concurrent;
    expect([c.version, c.step, c.updatesLanded]).toEqual([c.expectedVersion, c.expectedStep, c.updatesExpected]);
  }, 120_000);
});
