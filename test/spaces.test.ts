import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Random } from '../common/random.js';
import { ValidationError } from '../common/validate.js';
import { microLooseEnds, nb201ArchString, rnnLooseEnds, type SpaceKind } from '../search-spaces/genotype.js';
import { ENAS_MICRO_CIFAR10, ENAS_RNN_PTB } from '../search-spaces/known.js';
import {
  DEFAULT_SPECS,
  decisions,
  fromParams,
  fromTokens,
  searchSpaceOf,
  specOfParams,
  specOfSearchSpace,
  toParams,
  toTokens,
  type SpaceSpec,
} from '../search-spaces/spaces.js';
import { specFromArgs } from '../cli/space.js';

const KINDS: SpaceKind[] = ['macro', 'micro', 'rnn', 'nb201'];

function randomTokens(spec: SpaceSpec, random: Random): number[] {
  return decisions(spec).map((d) => random.int(d.choices.length));
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error.problems;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('search-space files', () => {
  it.each(KINDS)('%s.json is exactly what the generator writes for the default spec', (kind) => {
    const file = JSON.parse(readFileSync(new URL(`../search-spaces/${kind}.json`, import.meta.url), 'utf8'));
    expect(file).toEqual(searchSpaceOf(DEFAULT_SPECS[kind]));
    expect(specOfSearchSpace(file)).toEqual(DEFAULT_SPECS[kind]);
  });

  it('has the reference decision counts (ENAS.md §1-2)', () => {
    expect(decisions(DEFAULT_SPECS.macro)).toHaveLength(78); // 12 + 12·11/2
    expect(decisions(DEFAULT_SPECS.micro)).toHaveLength(40); // 20 per cell
    expect(decisions(DEFAULT_SPECS.rnn)).toHaveLength(23); // [f0, p1, f1, …, p11, f11]
    expect(decisions(DEFAULT_SPECS.nb201)).toHaveLength(6);
  });

  it('uses only NNI choice entries, so built-in tuners sample it unchanged', () => {
    for (const kind of KINDS)
      for (const entry of Object.values(searchSpaceOf(DEFAULT_SPECS[kind]))) {
        expect(entry._type).toBe('choice');
        expect(entry._value.every((v) => typeof v === 'string' || typeof v === 'number')).toBe(true);
      }
  });

  it('names NB201 edges as the NNI export sample does', () => {
    const sample = JSON.parse(
      readFileSync(new URL('../../shared/reference/nni-export-sample.json', import.meta.url), 'utf8'),
    ) as { parameter: Record<string, string> }[];
    for (const trial of sample) expect(() => fromParams(DEFAULT_SPECS.nb201, trial.parameter)).not.toThrow();
  });

  it('generates other sizes: 24 macro layers, op subsets in registry order', () => {
    const macro24 = specFromArgs({ kind: 'macro', layers: 24 });
    expect(decisions(macro24)).toHaveLength(24 + (24 * 23) / 2); // 300 tokens, ENAS.md §2
    expect(specOfSearchSpace(searchSpaceOf(macro24))).toEqual(macro24);
    const rnn2 = specFromArgs({ kind: 'rnn', layers: 12, ops: ['relu', 'tanh'] });
    expect(rnn2.ops).toEqual(['tanh', 'relu']);
    expect(() => specFromArgs({ kind: 'micro', layers: 12, ops: ['conv9x9'] })).toThrow(/unknown micro ops conv9x9/);
    expect(() => specFromArgs({ kind: 'micro', layers: 12, nodes: 0 })).toThrow(/--nodes must be a positive integer/);
  });

  it('refuses search spaces that are not ours, naming the keys', () => {
    const space = searchSpaceOf(DEFAULT_SPECS.micro);
    expect(problemsOf(() => specOfSearchSpace({ lr: { _type: 'uniform', _value: [0, 1] } })).join()).toMatch(
      /key "lr._type"/,
    );
    const { normal_node_4_op_2: _dropped, ...missing } = space;
    expect(problemsOf(() => specOfSearchSpace(missing))).toContain('missing key "normal_node_4_op_2"');
    const wrongChoices = { ...space, reduce_node_3_input_1: { _type: 'choice', _value: [0, 1, 2, 3] } };
    expect(problemsOf(() => specOfSearchSpace(wrongChoices)).join()).toMatch(/key "reduce_node_3_input_1": choices/);
    expect(problemsOf(() => specOfSearchSpace({ ...space, extra: { _type: 'choice', _value: [1] } }))).toContain(
      'unknown key "extra"',
    );
  });
});

describe('genotype conversions', () => {
  it.each(KINDS)('%s: tokens → genotype → params → genotype → tokens is the identity', (kind) => {
    const spec = DEFAULT_SPECS[kind];
    const random = new Random(7);
    for (let trial = 0; trial < 50; trial++) {
      const tokens = randomTokens(spec, random);
      const genotype = fromTokens(spec, tokens);
      const params = toParams(genotype, spec);
      // NNI round-trips parameters through JSON.
      const back = fromParams(spec, JSON.parse(JSON.stringify(params)));
      expect(back).toEqual(genotype);
      expect(toTokens(back, spec)).toEqual(tokens);
    }
  });

  it('decodes the released micro cells with their reference loose ends (ENAS.md §4)', () => {
    expect(ENAS_MICRO_CIFAR10.normal[0]).toEqual({ inputs: [0, 0], ops: ['avgpool3x3', 'sepconv3x3'] });
    expect(ENAS_MICRO_CIFAR10.reduce[4]).toEqual({ inputs: [0, 1], ops: ['maxpool3x3', 'sepconv5x5'] });
    expect(microLooseEnds(ENAS_MICRO_CIFAR10.normal)).toEqual([2, 3, 4, 5, 6]); // 5 loose ends
    expect(microLooseEnds(ENAS_MICRO_CIFAR10.reduce)).toEqual([2, 4, 5, 6]); // 4 loose ends
  });

  it('decodes the released PTB cell with loose ends {3,4,7,9,10,11} (ENAS.md §4)', () => {
    expect(rnnLooseEnds(ENAS_RNN_PTB.nodes)).toEqual([3, 4, 7, 9, 10, 11]);
    expect(ENAS_RNN_PTB.nodes[0]).toEqual({ prev: -1, act: 'tanh' });
    expect(ENAS_RNN_PTB.nodes[6]).toEqual({ prev: 5, act: 'relu' });
  });

  it('reads macro skip bits with the reference child indexing (ENAS.md §1a)', () => {
    const spec = { ...DEFAULT_SPECS.macro, layers: 3 } as SpaceSpec;
    // layer 0: op 0 | layer 1: op 5, skip from stem | layer 2: op 1, skips from stem (0), out_0 (1)
    const genotype = fromTokens(spec, [0, 5, 1, 1, 0, 1]);
    expect(genotype).toEqual({
      space: 'macro',
      layers: [
        { op: 'conv3x3', skips: [] },
        { op: 'maxpool3x3', skips: [1] },
        { op: 'sepconv3x3', skips: [0, 1] },
      ],
    });
    expect(Object.keys(toParams(genotype, spec))).toEqual([
      'layer_0_op',
      'layer_1_op',
      'layer_1_skip_from_stem',
      'layer_2_op',
      'layer_2_skip_from_stem',
      'layer_2_skip_from_0',
    ]);
  });

  it('writes NB201 arch strings in the benchmark CSV format', () => {
    const genotype = fromTokens(DEFAULT_SPECS.nb201, [4, 2, 1, 2, 1, 1]);
    expect(nb201ArchString(genotype as never)).toBe(
      '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|',
    );
  });
});

describe('parameters without the space file', () => {
  it.each(KINDS)('%s: a trial recovers the genotype from the parameter dict alone', (kind) => {
    const spec = kind === 'macro' ? ({ ...DEFAULT_SPECS.macro, layers: 5 } as SpaceSpec) : DEFAULT_SPECS[kind];
    const params = toParams(fromTokens(spec, randomTokens(spec, new Random(1))), spec);
    expect(fromParams(specOfParams(params), params)).toEqual(fromParams(spec, params));
  });

  it('refuses foreign parameter dicts, naming what it expected', () => {
    expect(problemsOf(() => specOfParams({ lr: 0.1 }))[0]).toMatch(/not from an ENAS space: expected one of the keys "layer_0_op"/);
    expect(problemsOf(() => specOfParams('x'))[0]).toMatch(/expected an object/);
  });
});

describe('parameter validation', () => {
  const spec = DEFAULT_SPECS.rnn;
  const good = toParams(fromTokens(spec, decisions(spec).map(() => 0)), spec);

  it('names a missing key', () => {
    const { node_7_prev: _dropped, ...params } = good;
    expect(problemsOf(() => fromParams(spec, params))).toEqual(['missing key "node_7_prev"']);
  });

  it('names an unknown key', () => {
    expect(problemsOf(() => fromParams(spec, { ...good, lr: 0.1 }))).toEqual(['unknown key "lr"']);
  });

  it('names an out-of-range or mistyped value', () => {
    expect(problemsOf(() => fromParams(spec, { ...good, node_3_prev: 3 }))).toEqual([
      'key "node_3_prev": 3 is not one of [0,1,2]',
    ]);
    expect(problemsOf(() => fromParams(spec, { ...good, node_3_prev: '1' }))).toEqual([
      'key "node_3_prev": "1" is not one of [0,1,2]',
    ]);
    expect(problemsOf(() => fromParams(spec, { ...good, node_0_act: 'gelu' }))[0]).toMatch(/^key "node_0_act": "gelu"/);
  });

  it('refuses non-objects and bad token sequences', () => {
    expect(problemsOf(() => fromParams(spec, [1, 2]))[0]).toMatch(/must be object/);
    expect(problemsOf(() => fromTokens(spec, [0]))[0]).toMatch(/has 1 tokens, the rnn space needs 23/);
    const tokens = decisions(spec).map(() => 0);
    tokens[2] = 9;
    expect(problemsOf(() => fromTokens(spec, tokens))).toEqual(['token 2 ("node_1_act"): 9 is outside [0, 4)']);
  });
});
