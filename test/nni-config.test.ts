import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalExpParams, loadExperimentConfig, searchSpaceOfConfig } from '../common/nni-config.js';

function writeConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nni-config-'));
  writeFileSync(join(dir, 'space.json'), '{"x": {"_type": "choice", "_value": [1, 2]}}');
  const path = join(dir, 'config.yml');
  writeFileSync(path, text);
  return path;
}

const GOOD = `
experimentName: t
searchSpaceFile: space.json
trialCommand: node trial.js
trialCodeDirectory: ../code
trialConcurrency: 2
maxTrialNumber: 5
tuner:
  codeDirectory: tuner
  className: nni_enas_tuner.EnasTuner
  classArgs: {seed: 7}
trainingService:
  platform: local
`;

describe('config.yml', () => {
  it('resolves paths against the file and reads the space', () => {
    const path = writeConfig(GOOD);
    const config = loadExperimentConfig(path);
    const dir = join(path, '..');
    expect(config.searchSpaceFile).toBe(join(dir, 'space.json'));
    expect(config.trialCodeDirectory).toBe(join(dir, '..', 'code'));
    expect(config.tuner.codeDirectory).toBe(join(dir, 'tuner'));
    expect(searchSpaceOfConfig(config)).toEqual({ x: { _type: 'choice', _value: [1, 2] } });
  });

  it('builds the canonical exp_params NNI passes to the tuner (NNI-PROTOCOL.md a.1)', () => {
    const params = canonicalExpParams(loadExperimentConfig(writeConfig(GOOD)));
    expect(params).not.toHaveProperty('searchSpace');
    expect(params.tuner).toMatchObject({ className: 'nni_enas_tuner.EnasTuner', classArgs: { seed: 7 } });
    expect(params.trainingService).toMatchObject({ platform: 'local', trialCommand: 'node trial.js' });
  });

  it('names the bad field', () => {
    expect(() => loadExperimentConfig(writeConfig(GOOD.replace('trialConcurrency: 2', 'trialConcurrency: 0')))).toThrow(
      /config.yml: experiment config: key "trialConcurrency" must be >= 1/,
    );
    expect(() => loadExperimentConfig(writeConfig(GOOD.replace('nni_enas_tuner.EnasTuner', 'EnasTuner')))).toThrow(
      /key "tuner.className" must match pattern/,
    );
    expect(() => loadExperimentConfig(writeConfig(GOOD.replace('searchSpaceFile: space.json', '')))).toThrow(
      /exactly one of searchSpaceFile and searchSpace/,
    );
    expect(() => loadExperimentConfig(writeConfig('trialCommand: [unclosed'))).toThrow(/config.yml: /);
  });
});
