/*
 * The NAS-Bench-201 table reader (trial/nb201-table.ts) on small inline CSVs, and on the shared
 * table when it is present.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Nb201Genotype } from '../search-spaces/genotype.js';
import { defaultNb201TablePath, Nb201Table } from '../trial/nb201-table.js';

const HEADER = 'file id,arch str,cfg name,C,N,train accuracy,validation accuracy,test accuracy';
const ARCH = '|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|';
const GENOTYPE: Nb201Genotype = {
  space: 'nb201',
  edges: ['nor_conv_3x3', 'nor_conv_3x3', 'skip_connect', 'skip_connect', 'nor_conv_1x1', 'avg_pool_3x3'],
};

describe('Nb201Table', () => {
  it('looks a genotype up by its arch string', () => {
    const table = Nb201Table.parse(`${HEADER}\n7,${ARCH},infer.tiny,16,5,99.5,89.25,88.75\n`, 'inline');
    expect(table.size).toBe(1);
    expect(table.lookup(GENOTYPE)).toEqual({ arch: ARCH, trainAccuracy: 99.5, validAccuracy: 89.25, testAccuracy: 88.75 });
    expect(() => table.lookup({ ...GENOTYPE, edges: [...GENOTYPE.edges].reverse() })).toThrow(/not in the NAS-Bench-201 table/);
  });

  it('refuses malformed tables with the line at fault', () => {
    expect(() => Nb201Table.parse('a,b\n', 'x.csv')).toThrow(/x.csv: expected the header/);
    expect(() => Nb201Table.parse(`${HEADER}\n1,${ARCH},c,16,5,99,abc,88\n`, 'x.csv')).toThrow(/x.csv line 2: accuracy "abc"/);
    expect(() => Nb201Table.parse(`${HEADER}\n1,${ARCH},c,16,5,99,89,88\n2,${ARCH},c,16,5,99,89,88\n`, 'x.csv')).toThrow(/line 3: .* appears twice/);
  });

  it.runIf(existsSync(defaultNb201TablePath()))('reads the shared table: 15,625 cells, best by validation 91.09 test', () => {
    const table = Nb201Table.load(defaultNb201TablePath());
    expect(table.size).toBe(15625);
    expect(table.bestByValidation().testAccuracy).toBeCloseTo(91.09, 2);
  });
});
