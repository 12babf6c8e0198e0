#!/usr/bin/env node
/*
 * The trial program NNI starts once per architecture (config.yml trialCommand
 * `node dist/trial/main.js --mode shared …`, run by /bin/bash in trialCodeDirectory). It starts
 * reading the data ahead on a worker thread first, then loads the trial (trial/trial.ts) and
 * runs it; the reading overlaps the loading of the trial's modules and TensorFlow.js.
 */
import { readAheadForCommandLine } from './read-ahead.js';

const dataReady = readAheadForCommandLine(process.argv.slice(2));
let status: number;
try {
  const { runTrial } = await import('./trial.js');
  status = await runTrial(dataReady);
} catch (error) {
  process.stderr.write(`nni-enas trial: cannot load the trial: ${(error as Error).message}\n`);
  status = 1;
}
// Explicitly: fetch keeps idle connections to NNI's channel open for a while, and the read-ahead worker may still run.
process.exit(status);
