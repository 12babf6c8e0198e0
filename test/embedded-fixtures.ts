/*
 * Shared pieces of the embedded-runner tests: a config.yml for a small space on tiny data, quiet
 * I/O for the runs, stop requests that fire after a given number of safe points, tiny retraining
 * settings, and the trained network a retraining's last checkpoint holds.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nniConfigYaml } from '../common/nni-config-yaml.js';
import { searchSpaceOf, type SpaceSpec } from '../search-spaces/spaces.js';
import type { SearchIo } from '../embedded/phases.js';
import { ProgressLine } from '../embedded/progress.js';
import type { StopRequest } from '../embedded/interrupt.js';
import { readArchitectureFile } from '../embedded/architectures.js';
import { CHECKPOINT_DIR, readCheckpoint, restoreModel } from '../embedded/checkpoint.js';
import { createFixedModel, type FixedModelConfig } from '../embedded/export.js';
import { RETRAIN_PRESETS } from '../embedded/presets.js';
import { readRetrainSettings, type RetrainSettings } from '../embedded/retrain.js';

/** The project's checkout, where relative data paths of a config are resolved. */
export const REPO = join(import.meta.dirname, '..');
export const KJV_PTB = join(REPO, '..', 'shared', 'data', 'kjv-ptb');

/** Writes config.yml and its space file into a fresh directory; returns the config's path. */
export function writeConfig(spec: SpaceSpec, trialFlags: string, classArgs: Record<string, unknown> = { seed: 3 }): string {
  const dir = mkdtempSync(join(tmpdir(), 'embedded-config-'));
  writeFileSync(join(dir, 'space.json'), JSON.stringify(searchSpaceOf(spec)));
  const path = join(dir, 'config.yml');
  writeFileSync(path, nniConfigYaml({ experimentName: 'embedded-test', trialCommand: `node dist/trial/main.js --mode shared ${trialFlags}`, trialCodeDirectory: REPO, classArgs }));
  return path;
}

export const freshDir = (name: string): string => mkdtempSync(join(tmpdir(), `embedded-${name}-`));

/** A stop request that turns true at its `after`-th check (never, by default). */
export function stopAfter(after = Infinity): StopRequest {
  let checks = 0;
  return {
    get requested() {
      checks++;
      return checks > after;
    },
  };
}

/** I/O that keeps the printed lines and drops the progress line. */
export function quietIo(stop: StopRequest = stopAfter()): SearchIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, print: (line) => void lines.push(line), progress: new ProgressLine({ write: () => true }), stop };
}

/** Tiny retraining settings for an architecture file (what `nni-enas retrain --preset tiny` would build). */
export function retrainSettings(arch: string, overrides: Partial<RetrainSettings> = {}): RetrainSettings {
  const loaded = readArchitectureFile(arch);
  return {
    format: 'nni-enas-retrain/1',
    arch,
    spec: loaded.spec as RetrainSettings['spec'],
    genotype: loaded.genotype,
    randomSeed: null,
    data: loaded.data!,
    preset: 'tiny',
    recipe: RETRAIN_PRESETS.tiny[loaded.spec.space as 'micro' | 'rnn'],
    seed: 5,
    backend: null,
    ...overrides,
  };
}

/** The network a retraining's last checkpoint holds: the trained network itself. */
export function trainedNetwork(dir: string) {
  const saved = readRetrainSettings(dir);
  const model = (JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { model: FixedModelConfig }).model;
  const network = createFixedModel(saved.genotype, model);
  const checkpoint = readCheckpoint(join(dir, CHECKPOINT_DIR), 'retrain', { model, genotype: saved.genotype, data: saved.data, recipe: saved.recipe });
  restoreModel(network, checkpoint);
  return { network, genotype: saved.genotype };
}
