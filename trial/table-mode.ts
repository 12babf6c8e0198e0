/*
 * `--mode table`: a NAS-Bench-201 architecture's accuracies looked up in the benchmark table
 * (trial/nb201-table.ts), no training; whole tuner comparisons then take minutes. Accuracies are
 * reported as fractions, the scale of the CNN rewards, which the controller defaults are tuned for.
 */
import { defaultNb201TablePath, Nb201Table } from './nb201-table.js';
import type { RunContext } from './task.js';

export async function runTable(context: RunContext): Promise<void> {
  const { options, architecture, metrics, print, phases } = context;
  const { genotype } = architecture;
  if (genotype.space !== 'nb201') throw new Error(`internal: table mode with a ${genotype.space} architecture`);
  const path = options.table ?? defaultNb201TablePath();
  const entry = Nb201Table.load(path).lookup(genotype);
  context.recordArchitecture();
  phases.end('lookup');
  await metrics.reportFinal({ default: entry.validAccuracy / 100, test: entry.testAccuracy / 100 });
  print(`NAS-Bench-201 ${entry.arch} in ${path}: validation ${entry.validAccuracy}%, test ${entry.testAccuracy}% (train ${entry.trainAccuracy}%)`);
  print(`timings: ${phases.line()}`);
}
