/*
 * Search spaces as NNI search-space data, and the conversions of a genotype to and from an NNI
 * parameter dict and the controller's token sequence.
 *
 * A space is a list of decisions in the controller's token order (the reference code's arc
 * order, ENAS.md §2), each an NNI `choice`. Because every decision is a flat `choice`, NNI's
 * TPE, Random, Evolution and GridSearch sample our spaces unchanged, and the web UI shows one
 * column per decision.
 */
import {
  MACRO_OPS,
  MICRO_OPS,
  NB201_EDGES,
  NB201_OPS,
  RNN_ACTIVATIONS,
  type Genotype,
  type MacroOp,
  type MicroNode,
  type MicroOp,
  type Nb201Op,
  type RnnActivation,
  type SpaceKind,
} from './genotype.js';
import { Random } from '../common/random.js';
import { compileChecker, ValidationError } from '../common/validate.js';

/** The size and op vocabulary of a space. `ops` may be a subset of the registry, in its order. */
export type SpaceSpec =
  | { space: 'macro'; layers: number; ops: readonly MacroOp[] }
  | { space: 'micro'; nodes: number; ops: readonly MicroOp[] }
  | { space: 'rnn'; nodes: number; ops: readonly RnnActivation[] }
  | { space: 'nb201'; ops: readonly Nb201Op[] };

export type ChoiceValue = string | number;

/** One decision: the NNI parameter key and its options (token t means choices[t]). */
export interface Decision {
  key: string;
  choices: readonly ChoiceValue[];
}

/** NNI search-space JSON restricted to `choice` entries. */
export type SearchSpace = Record<string, { _type: 'choice'; _value: ChoiceValue[] }>;

/** Parameters as NNI hands them to a trial: decision key → chosen value. */
export type Params = Record<string, ChoiceValue>;

/** The reference sizes: macro L=12, micro 5 nodes, rnn 12 nodes, NB201 (ENAS.md §1). */
export const DEFAULT_SPECS: Record<SpaceKind, SpaceSpec> = {
  macro: { space: 'macro', layers: 12, ops: MACRO_OPS },
  micro: { space: 'micro', nodes: 5, ops: MICRO_OPS },
  rnn: { space: 'rnn', nodes: 12, ops: RNN_ACTIVATIONS },
  nb201: { space: 'nb201', ops: NB201_OPS },
};

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Key of macro layer i's skip bit j: source j of [stem, out_0, …, out_{i-2}] (ENAS.md §1a). */
export const macroSkipKey = (layer: number, bit: number): string =>
  `layer_${layer}_skip_from_${bit === 0 ? 'stem' : bit - 1}`;

/** All decisions of a space, in token order. */
export function decisions(spec: SpaceSpec): Decision[] {
  const out: Decision[] = [];
  switch (spec.space) {
    case 'macro':
      for (const i of range(spec.layers)) {
        out.push({ key: `layer_${i}_op`, choices: spec.ops });
        for (const j of range(i)) out.push({ key: macroSkipKey(i, j), choices: [0, 1] });
      }
      break;
    case 'micro':
      for (const cell of ['normal', 'reduce'])
        for (const n of range(spec.nodes).map((b) => b + 2))
          for (const k of [1, 2]) {
            out.push({ key: `${cell}_node_${n}_input_${k}`, choices: range(n) });
            out.push({ key: `${cell}_node_${n}_op_${k}`, choices: spec.ops });
          }
      break;
    case 'rnn':
      for (const j of range(spec.nodes)) {
        if (j > 0) out.push({ key: `node_${j}_prev`, choices: range(j) });
        out.push({ key: `node_${j}_act`, choices: spec.ops });
      }
      break;
    case 'nb201':
      for (const [to, from] of NB201_EDGES) out.push({ key: `edge_${to}_from_${from}`, choices: spec.ops });
      break;
  }
  return out;
}

/** The NNI search-space JSON of a spec. */
export function searchSpaceOf(spec: SpaceSpec): SearchSpace {
  const space: SearchSpace = {};
  for (const d of decisions(spec)) space[d.key] = { _type: 'choice', _value: [...d.choices] };
  return space;
}

/** The genotype's chosen values, in token order. */
function valuesOf(genotype: Genotype): ChoiceValue[] {
  switch (genotype.space) {
    case 'macro':
      return genotype.layers.flatMap((layer) => [layer.op, ...layer.skips]);
    case 'micro':
      return [...genotype.normal, ...genotype.reduce].flatMap((node) => [
        node.inputs[0],
        node.ops[0],
        node.inputs[1],
        node.ops[1],
      ]);
    case 'rnn':
      return genotype.nodes.flatMap((node, j) => (j === 0 ? [node.act] : [node.prev, node.act]));
    case 'nb201':
      return [...genotype.edges];
  }
}

/** Builds a genotype from values in token order; the caller has checked them against the spec. */
function genotypeOfValues(spec: SpaceSpec, values: readonly ChoiceValue[]): Genotype {
  let at = 0;
  const take = <T extends ChoiceValue>(): T => values[at++] as T;
  switch (spec.space) {
    case 'macro':
      return {
        space: 'macro',
        layers: range(spec.layers).map((i) => ({
          op: take<MacroOp>(),
          skips: range(i).map(() => take<0 | 1>()),
        })),
      };
    case 'micro': {
      const cell = (): MicroNode[] =>
        range(spec.nodes).map(() => {
          const [in1, op1, in2, op2] = [take<number>(), take<MicroOp>(), take<number>(), take<MicroOp>()];
          return { inputs: [in1, in2], ops: [op1, op2] };
        });
      const normal = cell();
      return { space: 'micro', normal, reduce: cell() };
    }
    case 'rnn':
      return {
        space: 'rnn',
        nodes: range(spec.nodes).map((j) => {
          const prev = j === 0 ? -1 : take<number>();
          return { prev, act: take<RnnActivation>() };
        }),
      };
    case 'nb201':
      return { space: 'nb201', edges: range(NB201_EDGES.length).map(() => take<Nb201Op>()) };
  }
}

/** The NNI parameter dict of a genotype. */
export function toParams(genotype: Genotype, spec: SpaceSpec): Params {
  const ds = decisions(spec);
  const values = valuesOf(genotype);
  if (values.length !== ds.length)
    throw new Error(`genotype has ${values.length} decisions, the ${spec.space} space has ${ds.length}`);
  return Object.fromEntries(ds.map((d, i) => [d.key, values[i]!]));
}

const paramCheckers = new WeakMap<SpaceSpec, (data: unknown) => Params>();

/**
 * Parses an NNI parameter dict. A missing key, unknown key or value outside the key's choices
 * throws a ValidationError naming the key.
 */
export function fromParams(spec: SpaceSpec, params: unknown): Genotype {
  let check = paramCheckers.get(spec);
  if (!check) {
    const ds = decisions(spec);
    check = compileChecker<Params>(
      {
        type: 'object',
        properties: Object.fromEntries(ds.map((d) => [d.key, { enum: [...d.choices] }])),
        required: ds.map((d) => d.key),
        additionalProperties: false,
      },
      `parameters for the ${spec.space} space`,
    );
    paramCheckers.set(spec, check);
  }
  const checked = check(params);
  return genotypeOfValues(
    spec,
    decisions(spec).map((d) => checked[d.key]!),
  );
}

/** The controller's token sequence (reference arc order; token = index into the choices). */
export function toTokens(genotype: Genotype, spec: SpaceSpec): number[] {
  const params = toParams(genotype, spec);
  return decisions(spec).map((d) => {
    const token = d.choices.indexOf(params[d.key]!);
    if (token < 0) throw new ValidationError('genotype', [`key "${d.key}": ${JSON.stringify(params[d.key])} is not one of ${JSON.stringify(d.choices)}`]);
    return token;
  });
}

/** A genotype from the controller's tokens (or a released reference arc, ENAS.md §4). */
export function fromTokens(spec: SpaceSpec, tokens: readonly number[]): Genotype {
  const ds = decisions(spec);
  if (tokens.length !== ds.length)
    throw new ValidationError('token sequence', [`has ${tokens.length} tokens, the ${spec.space} space needs ${ds.length}`]);
  const problems: string[] = [];
  const values = ds.map((d, i) => {
    const t = tokens[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= d.choices.length)
      problems.push(`token ${i} ("${d.key}"): ${t} is outside [0, ${d.choices.length})`);
    return d.choices[t]!;
  });
  if (problems.length) throw new ValidationError('token sequence', problems);
  return genotypeOfValues(spec, values);
}

const checkSpaceFile = compileChecker<SearchSpace>(
  {
    type: 'object',
    minProperties: 1,
    additionalProperties: {
      type: 'object',
      properties: {
        _type: { const: 'choice' },
        _value: { type: 'array', minItems: 1, items: { type: ['string', 'number'] } },
      },
      required: ['_type', '_value'],
      additionalProperties: false,
    },
  },
  'search space',
);

const KIND_MARKERS: [SpaceKind, string][] = [
  ['macro', 'layer_0_op'],
  ['micro', 'normal_node_2_op_1'],
  ['rnn', 'node_0_act'],
  ['nb201', 'edge_1_from_0'],
];

const REGISTRY: Record<SpaceKind, readonly string[]> = {
  macro: MACRO_OPS,
  micro: MICRO_OPS,
  rnn: RNN_ACTIVATIONS,
  nb201: NB201_OPS,
};

/**
 * Recognises one of our spaces in NNI search-space JSON (a space file, or NNI's IN / SS
 * content) and returns its spec. Anything that is not exactly a space we generate is refused
 * with the offending keys named.
 */
export function specOfSearchSpace(data: unknown): SpaceSpec {
  const space = checkSpaceFile(data);
  const keys = Object.keys(space);
  const kind = KIND_MARKERS.find(([, marker]) => marker in space)?.[0];
  if (!kind)
    throw new ValidationError('search space', [
      `not an ENAS space: expected one of the keys ${KIND_MARKERS.map(([, m]) => `"${m}"`).join(', ')}`,
    ]);
  const opKey = KIND_MARKERS.find(([k]) => k === kind)![1];
  const ops = space[opKey]!._value;
  const unknownOps = ops.filter((op) => !REGISTRY[kind].includes(op as string));
  if (unknownOps.length)
    throw new ValidationError('search space', [
      `key "${opKey}": unknown ops ${JSON.stringify(unknownOps)}; known: ${JSON.stringify(REGISTRY[kind])}`,
    ]);
  const count = (re: RegExp) => keys.filter((k) => re.test(k)).length;
  let spec: SpaceSpec;
  switch (kind) {
    case 'macro':
      spec = { space: kind, layers: count(/^layer_\d+_op$/), ops: ops as MacroOp[] };
      break;
    case 'micro':
      spec = { space: kind, nodes: count(/^normal_node_\d+_op_1$/), ops: ops as MicroOp[] };
      break;
    case 'rnn':
      spec = { space: kind, nodes: count(/^node_\d+_act$/), ops: ops as RnnActivation[] };
      break;
    case 'nb201':
      spec = { space: kind, ops: ops as Nb201Op[] };
      break;
  }
  const expected = searchSpaceOf(spec);
  const problems: string[] = [];
  for (const key of keys) if (!(key in expected)) problems.push(`unknown key "${key}"`);
  for (const [key, entry] of Object.entries(expected)) {
    if (!(key in space)) problems.push(`missing key "${key}"`);
    else if (JSON.stringify(space[key]!._value) !== JSON.stringify(entry._value))
      problems.push(`key "${key}": choices ${JSON.stringify(space[key]!._value)}, expected ${JSON.stringify(entry._value)}`);
  }
  if (problems.length) throw new ValidationError(`${kind} search space`, problems);
  return spec;
}

/**
 * The spec a parameter dict belongs to, read from its keys with the full op registry: a trial
 * needs only the genotype, so it does not need the space file (an op subset in the file cannot
 * produce values outside the registry). `fromParams` then validates every key.
 */
export function specOfParams(params: unknown): SpaceSpec {
  if (typeof params !== 'object' || params === null || Array.isArray(params))
    throw new ValidationError('parameters', [`expected an object of decisions, got ${JSON.stringify(params)}`]);
  const keys = Object.keys(params);
  const kind = KIND_MARKERS.find(([, marker]) => keys.includes(marker))?.[0];
  if (!kind)
    throw new ValidationError('parameters', [
      `not from an ENAS space: expected one of the keys ${KIND_MARKERS.map(([, m]) => `"${m}"`).join(', ')}`,
    ]);
  const count = (re: RegExp) => keys.filter((k) => re.test(k)).length;
  switch (kind) {
    case 'macro':
      return { space: kind, layers: count(/^layer_\d+_op$/), ops: MACRO_OPS };
    case 'micro':
      return { space: kind, nodes: count(/^normal_node_\d+_op_1$/), ops: MICRO_OPS };
    case 'rnn':
      return { space: kind, nodes: count(/^node_\d+_act$/), ops: RNN_ACTIVATIONS };
    case 'nb201':
      return { space: kind, ops: NB201_OPS };
  }
}

/** Number of architectures in a space (for messages and docs; a float, it can exceed 2^53). */
export function spaceSize(spec: SpaceSpec): number {
  return decisions(spec).reduce((n, d) => n * d.choices.length, 1);
}

/**
 * Uniformly random tokens of `spec`, drawn from (seed, index) alone: the index-th architecture of
 * a warm-up (embedded search steps, NNI parameter ids) without a generator state to checkpoint.
 */
export function uniformTokens(spec: SpaceSpec, seed: number, index: number): number[] {
  const random = new Random(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b));
  return decisions(spec).map((d) => random.int(d.choices.length));
}
