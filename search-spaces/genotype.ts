/*
 * Architectures as plain data (the DARTS "genotype" idea): one encoding shared by the tuner's
 * controller, the trials' supernets and fixed networks, NNI search-space files and exports.
 *
 * Operation names are the registry keys of trial/ops.ts; the order of each list is the
 * reference code's op id order (ENAS.md §1), which is also the controller's token value.
 */

/** Macro ops, in the reference code's id order (ENAS.md §1a: 0 conv3, 1 sep3, 2 conv5, 3 sep5, 4 avg, 5 max). */
export const MACRO_OPS = ['conv3x3', 'sepconv3x3', 'conv5x5', 'sepconv5x5', 'avgpool3x3', 'maxpool3x3'] as const;
/** Micro ops, reference id order (ENAS.md §1b: 0 sep3, 1 sep5, 2 avg, 3 max, 4 identity). */
export const MICRO_OPS = ['sepconv3x3', 'sepconv5x5', 'avgpool3x3', 'maxpool3x3', 'identity'] as const;
/** RNN activations, the E child's id order (ENAS.md §1c: 0 tanh, 1 relu, 2 identity, 3 sigmoid). */
export const RNN_ACTIVATIONS = ['tanh', 'relu', 'identity', 'sigmoid'] as const;
/** NAS-Bench-201 edge ops, named as in the benchmark's arch strings. */
export const NB201_OPS = ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3'] as const;

export type MacroOp = (typeof MACRO_OPS)[number];
export type MicroOp = (typeof MICRO_OPS)[number];
export type RnnActivation = (typeof RNN_ACTIVATIONS)[number];
export type Nb201Op = (typeof NB201_OPS)[number];

export type SpaceKind = 'macro' | 'micro' | 'rnn' | 'nb201';

/**
 * Macro layer i. `skips[j]` (j < i) is 1 when layer i also receives input j of
 * [stem, out_0, …, out_{i-2}]: the reference child's indexing (ENAS.md §1a); the main input
 * out_{i-1} is always taken, so it has no bit.
 */
export interface MacroLayer {
  op: MacroOp;
  skips: (0 | 1)[];
}
export interface MacroGenotype {
  space: 'macro';
  layers: MacroLayer[];
}

/**
 * A computed micro-cell node: op1(in1) + op2(in2). Inputs index the cell's nodes, where 0 and 1
 * are the cell inputs h_{i-2}, h_{i-1} and computed node b (0-based) is node b+2.
 */
export interface MicroNode {
  inputs: [number, number];
  ops: [MicroOp, MicroOp];
}
export interface MicroGenotype {
  space: 'micro';
  normal: MicroNode[];
  reduce: MicroNode[];
}

/** RNN node j: activation, and (j ≥ 1) the predecessor node it reads; node 0 reads x_t and h_{t-1} (prev = -1). */
export interface RnnNode {
  prev: number;
  act: RnnActivation;
}
export interface RnnGenotype {
  space: 'rnn';
  nodes: RnnNode[];
}

/** NAS-Bench-201 cell: one op per edge, edges in the order of NB201_EDGES. */
export interface Nb201Genotype {
  space: 'nb201';
  edges: Nb201Op[];
}

export type Genotype = MacroGenotype | MicroGenotype | RnnGenotype | Nb201Genotype;

/** NB201 edges as [to, from], in the order of the benchmark's arch strings `|a~0|+|b~0|c~1|+|…|`. */
export const NB201_EDGES: readonly (readonly [number, number])[] = [
  [1, 0],
  [2, 0],
  [2, 1],
  [3, 0],
  [3, 1],
  [3, 2],
];

/** Loose ends of a micro cell: nodes never used as an input, cell inputs included (ENAS.md §1b). */
export function microLooseEnds(nodes: readonly MicroNode[]): number[] {
  const used = new Set<number>();
  for (const node of nodes) for (const input of node.inputs) used.add(input);
  const ends: number[] = [];
  for (let n = 0; n < nodes.length + 2; n++) if (!used.has(n)) ends.push(n);
  return ends;
}

/** Loose ends of an RNN cell: nodes that are no node's predecessor; h_t is their mean (ENAS.md §1c). */
export function rnnLooseEnds(nodes: readonly RnnNode[]): number[] {
  const used = new Set(nodes.map((node) => node.prev));
  return nodes.map((_, j) => j).filter((j) => !used.has(j));
}

/** NB201 arch string, as the benchmark's CSV writes it: `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`. */
export function nb201ArchString(genotype: Nb201Genotype): string {
  const groups: string[] = [];
  for (let to = 1; to <= 3; to++) {
    const ops = NB201_EDGES.map((edge, e) => ({ edge, op: genotype.edges[e] }))
      .filter(({ edge }) => edge[0] === to)
      .map(({ edge, op }) => `${op}~${edge[1]}`);
    groups.push(`|${ops.join('|')}|`);
  }
  return groups.join('+');
}
