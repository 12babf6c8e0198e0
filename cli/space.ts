/*
 * `nni-enas space`: writes an NNI search-space file for one of our spaces, at any size.
 */
import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { MACRO_OPS, MICRO_OPS, NB201_OPS, RNN_ACTIVATIONS, type SpaceKind } from '../search-spaces/genotype.js';
import { searchSpaceOf, spaceSize, type SpaceSpec } from '../search-spaces/spaces.js';

interface SpaceArgs {
  kind: SpaceKind;
  layers: number;
  nodes?: number;
  ops?: string[];
  out?: string;
}

const REGISTRY: Record<SpaceKind, readonly string[]> = {
  macro: MACRO_OPS,
  micro: MICRO_OPS,
  rnn: RNN_ACTIVATIONS,
  nb201: NB201_OPS,
};

/** Builds a spec from CLI arguments; op subsets keep the registry's order (= token ids). */
export function specFromArgs(args: SpaceArgs): SpaceSpec {
  const registry = REGISTRY[args.kind];
  const unknown = (args.ops ?? []).filter((op) => !registry.includes(op));
  if (unknown.length) throw new Error(`unknown ${args.kind} ops ${unknown.join(', ')}; known: ${registry.join(', ')}`);
  const ops = args.ops ? registry.filter((op) => args.ops!.includes(op)) : registry;
  if (ops.length < 1) throw new Error('--ops must name at least one op');
  const positive = (n: number, what: string) => {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${n}`);
    return n;
  };
  switch (args.kind) {
    case 'macro':
      return { space: 'macro', layers: positive(args.layers, '--layers'), ops } as SpaceSpec;
    case 'micro':
      return { space: 'micro', nodes: positive(args.nodes ?? 5, '--nodes'), ops } as SpaceSpec;
    case 'rnn':
      return { space: 'rnn', nodes: positive(args.nodes ?? 12, '--nodes'), ops } as SpaceSpec;
    case 'nb201':
      return { space: 'nb201', ops } as SpaceSpec;
  }
}

export const spaceCommand: CommandModule<object, SpaceArgs> = {
  command: 'space <kind>',
  describe: 'write an NNI search-space file (choice entries only) for a space of any size',
  builder: (y) =>
    y
      .positional('kind', { choices: ['macro', 'micro', 'rnn', 'nb201'] as const, demandOption: true })
      .option('layers', { type: 'number', default: 12, describe: 'macro: number of layers' })
      .option('nodes', { type: 'number', describe: 'micro: computed nodes per cell (5); rnn: nodes (12)' })
      .option('ops', { type: 'string', array: true, describe: 'restrict to these ops (registry order is kept)' })
      .option('out', { type: 'string', describe: 'output file (default: stdout)' })
      .example('$0 space macro --layers 24 --out macro24.json', 'the 24-layer macro space of the final network')
      .example('$0 space rnn --ops tanh relu', 'the reference controller default num_funcs=2'),
  handler: (args) => {
    const spec = specFromArgs(args);
    // One decision per line: readable in a diff and in NNI's search-space tab.
    const entries = Object.entries(searchSpaceOf(spec)).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
    const text = `{\n${entries.join(',\n')}\n}\n`;
    if (args.out) {
      writeFileSync(args.out, text);
      console.error(`wrote ${args.out}: ${spec.space} space with ${spaceSize(spec).toExponential(2)} architectures`);
    } else process.stdout.write(text);
  },
};
