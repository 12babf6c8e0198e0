/*
 * The text of a minimal NNI experiment config for our tuner, as benchmarks and tests write them
 * for the embedded runner (which reads config.yml like nnictl does).
 */
export interface ConfigYamlOptions {
  experimentName: string;
  trialCommand: string;
  /** trialCodeDirectory: where NNI (and the embedded runner) resolve the trial's relative paths. */
  trialCodeDirectory: string;
  classArgs: unknown;
}

export function nniConfigYaml(options: ConfigYamlOptions): string {
  return [
    `experimentName: ${options.experimentName}`,
    'searchSpaceFile: space.json',
    `trialCommand: ${options.trialCommand}`,
    `trialCodeDirectory: ${options.trialCodeDirectory}`,
    'trialConcurrency: 1',
    'tuner:',
    '  codeDirectory: tuner',
    '  className: nni_enas_tuner.EnasTuner',
    `  classArgs: ${JSON.stringify(options.classArgs)}`,
    'trainingService:',
    '  platform: local',
    '',
  ].join('\n');
}
