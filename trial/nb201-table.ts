/*
 * The NAS-Bench-201 accuracy table (shared/data/nasbench201/*.csv, described in the shared
 * README): train, validation and test accuracy of all 15,625 cells, looked up by arch string. A
 * query then costs a lookup instead of a training run. Used by the trial's `table` mode and the
 * tuner benchmarks. The CSV is never copied into this repository; callers pass its path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nb201ArchString, type Nb201Genotype } from '../search-spaces/genotype.js';

/** One cell's accuracies, in percent as the table gives them. */
export interface Nb201Entry {
  arch: string;
  trainAccuracy: number;
  validAccuracy: number;
  testAccuracy: number;
}

const COLUMNS = ['file id', 'arch str', 'cfg name', 'C', 'N', 'train accuracy', 'validation accuracy', 'test accuracy'];

/** Where the shared data lives: ../shared/data/nasbench201/nb201-cifar10valid.csv from the repository root. */
export function defaultNb201TablePath(): string {
  // Walk up to package.json, so this works from the TypeScript source and from dist/ alike.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root (no package.json above this module)');
    dir = parent;
  }
  return resolve(dir, '../shared/data/nasbench201/nb201-cifar10valid.csv');
}

export class Nb201Table {
  private constructor(private readonly byArch: ReadonlyMap<string, Nb201Entry>) {}

  static load(path: string): Nb201Table {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the NAS-Bench-201 table ${path}: ${(error as Error).message}`);
    }
    return Nb201Table.parse(text, path);
  }

  /** Parses the CSV text; `source` names it in error messages. */
  static parse(text: string, source: string): Nb201Table {
    const lines = text.split(/\r?\n/).filter((line) => line.length > 0);
    if (lines[0] !== COLUMNS.join(','))
      throw new Error(`${source}: expected the header "${COLUMNS.join(',')}", found "${lines[0] ?? ''}"`);
    const byArch = new Map<string, Nb201Entry>();
    for (let i = 1; i < lines.length; i++) {
      const fields = lines[i]!.split(',');
      const where = `${source} line ${i + 1}`;
      if (fields.length !== COLUMNS.length) throw new Error(`${where}: ${fields.length} fields, expected ${COLUMNS.length}`);
      const [trainAccuracy, validAccuracy, testAccuracy] = fields.slice(5).map((field) => {
        const value = Number(field);
        if (field.trim() === '' || !(value >= 0 && value <= 100)) throw new Error(`${where}: accuracy "${field}" is not a percentage`);
        return value;
      }) as [number, number, number];
      const arch = fields[1]!;
      if (byArch.has(arch)) throw new Error(`${where}: architecture ${arch} appears twice`);
      byArch.set(arch, { arch, trainAccuracy, validAccuracy, testAccuracy });
    }
    if (byArch.size === 0) throw new Error(`${source}: no rows`);
    return new Nb201Table(byArch);
  }

  get size(): number {
    return this.byArch.size;
  }

  entries(): IterableIterator<Nb201Entry> {
    return this.byArch.values();
  }

  lookup(genotype: Nb201Genotype): Nb201Entry {
    const arch = nb201ArchString(genotype);
    const entry = this.byArch.get(arch);
    if (!entry) throw new Error(`architecture ${arch} is not in the NAS-Bench-201 table`);
    return entry;
  }

  /** The cell with the highest validation accuracy: what a search that queried every cell would pick. */
  bestByValidation(): Nb201Entry {
    let best: Nb201Entry | undefined;
    for (const entry of this.byArch.values()) if (!best || entry.validAccuracy > best.validAccuracy) best = entry;
    return best!;
  }
}
