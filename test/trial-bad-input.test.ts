/*
 * Bad input to a trial: a malformed or foreign parameter dict, parameters that do not fit the
 * mode or the dataset, a store of another model, a bad flag. Each is one clear line on stderr,
 * a non-zero exit (NNI marks the trial FAILED), no metric, and the weight store byte for byte as
 * it was. One case runs under NNI's HTTP trial channel to show the real path.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SPECS, type Params } from '../search-spaces/spaces.js';
import { FakeTrialChannelServer } from './fake-trial-channel.js';
import { randomParams, requireDist, runTrial, TINY_MICRO, withoutNni, type TrialRun } from './trial-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'trial-bad-'));
const store = join(dir, 'store');
const good = randomParams(DEFAULT_SPECS.micro, 6);
const args = [...TINY_MICRO, '--train-steps', '1', '--valid-batches', '1', '--store', store];
const without = (params: Params, key: string): Params => Object.fromEntries(Object.entries(params).filter(([k]) => k !== key));

interface Case {
  what: string;
  flags: string[];
  params: unknown;
  code: number;
  line: RegExp;
  /** Refused before the architecture files are written (the parameters themselves are bad). */
  writesNothing: boolean;
}

const CASES: Case[] = [
  { what: 'a missing key', flags: [], params: without(good, 'normal_node_3_op_2'), code: 2, line: /bad parameters \(parameter_id 0\): parameters for the micro space: missing key "normal_node_3_op_2"$/, writesNothing: true },
  { what: 'an unknown key', flags: [], params: { ...good, learning_rate: 0.1 }, code: 2, line: /unknown key "learning_rate"$/, writesNothing: true },
  { what: 'a value outside the choices', flags: [], params: { ...good, normal_node_2_input_1: 7 }, code: 2, line: /key "normal_node_2_input_1": 7 is not one of \[0,1\]$/, writesNothing: true },
  { what: 'an unknown op', flags: [], params: { ...good, reduce_node_4_op_1: 'conv7x7' }, code: 2, line: /key "reduce_node_4_op_1": "conv7x7" is not one of \["sepconv3x3",/, writesNothing: true },
  {
    what: 'a foreign dict',
    flags: [],
    params: { x: 23, opt: { _name: 'adam', beta1: 0.95 }, layers: 3 },
    code: 2,
    line: /not from an ENAS space: expected one of the keys "layer_0_op", "normal_node_2_op_1", "node_0_act", "edge_1_from_0"$/,
    writesNothing: true,
  },
  { what: 'not a dict', flags: [], params: [1, 2], code: 2, line: /expected an object of decisions, got \[1,2\]$/, writesNothing: true },
  { what: 'NAS-Bench-201 parameters in shared mode', flags: [], params: randomParams(DEFAULT_SPECS.nb201, 1), code: 2, line: /NAS-Bench-201 architectures are only looked up: use --mode table, not shared$/, writesNothing: true },
  { what: 'micro parameters in table mode', flags: ['--mode', 'table'], params: good, code: 2, line: /--mode table needs NAS-Bench-201 parameters, got a micro architecture$/, writesNothing: true },
  { what: 'a text dataset for the micro space', flags: ['--dataset', 'ptb'], params: good, code: 2, line: /--dataset ptb is text; the micro space needs an image dataset \(fashion-mnist, mnist, cifar10\)$/, writesNothing: true },
  {
    what: 'a store made for another model',
    flags: ['--channels', '3'],
    params: good,
    code: 1,
    line: /weight store .*\/store holds \{"model":"micro supernet",.*"channels":2,.*this trial needs .*"channels":3.*: pass another --store, or delete that directory$/,
    writesNothing: false,
  },
  { what: 'a bad flag', flags: ['--train-steps', '-1'], params: good, code: 2, line: /--train-steps must be an integer >= 1, got -1$/, writesNothing: true },
];

/** Every file of the store with the SHA-256 of its bytes (deep-equal on the bytes themselves is slow). */
function storeFiles(): Map<string, string> {
  return new Map(readdirSync(store).map((name) => [name, createHash('sha256').update(readFileSync(join(store, name))).digest('hex')]));
}

let before: Map<string, string>;
const runs = new Map<string, TrialRun>();
const outputOf = (c: Case) => join(dir, `out-${CASES.indexOf(c)}`);

beforeAll(async () => {
  requireDist();
  const run = await runTrial([...args, '--params', JSON.stringify(good)], dir);
  expect(run.code, run.stderr).toBe(0);
  before = storeFiles();
  // All at once: most stop right after reading their parameters.
  const results = await Promise.all(CASES.map((c) => runTrial([...args, ...c.flags, '--output', outputOf(c), '--params', JSON.stringify(c.params)], dir)));
  CASES.forEach((c, i) => runs.set(c.what, results[i]!));
});

/** Exit code, the one stderr line, nothing reported, store untouched, and (given `output`) no architecture files there. */
function expectRefused(run: TrialRun, code: number, line: RegExp, output?: string): void {
  expect(run.code, run.stderr).toBe(code);
  const lines = run.stderr.split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^nni-enas trial: /);
  expect(lines[0]).toMatch(line);
  expect(run.metrics).toEqual([]);
  expect(storeFiles()).toEqual(before);
  if (output) expect(existsSync(join(output, 'architecture.json'))).toBe(false);
}

describe('a trial refuses', () => {
  for (const c of CASES) it(c.what, () => expectRefused(runs.get(c.what)!, c.code, c.line, c.writesNothing ? outputOf(c) : undefined));
});

describe('under NNI', () => {
  const channel = new FakeTrialChannelServer();
  afterAll(() => channel.stop());

  it('a foreign parameter dict from the HTTP channel: one request, no metric, exit 2, store untouched', async () => {
    await channel.start();
    channel.enqueueParameter(JSON.stringify({ parameter_id: 4, parameter_source: 'algorithm', parameters: { x: 99 }, parameter_index: 0 }));
    const trialDir = join(dir, 'nni-trial');
    const env = {
      ...withoutNni(process.env),
      NNI_PLATFORM: 'local',
      NNI_EXP_ID: 'badexp01',
      NNI_TRIAL_JOB_ID: 'Xy12z',
      NNI_TRIAL_SEQ_ID: '0',
      NNI_SYS_DIR: trialDir,
      NNI_OUTPUT_DIR: trialDir,
      NNI_TRIAL_COMMAND_CHANNEL: channel.urlFor('Xy12z'),
    };
    const run = await runTrial([...args], dir, env);
    expectRefused(run, 2, /bad parameters \(parameter_id 4\): parameters: not from an ENAS space/, trialDir);
    expect(channel.log.filter((line) => line.startsWith('PUT'))).toEqual(['PUT Xy12z {"type":"request_parameter"}']);
    expect(channel.metrics).toEqual([]);
  });
});
