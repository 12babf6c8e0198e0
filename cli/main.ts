#!/usr/bin/env node
/*
 * The `nni-enas` command line: one entry point for every tool the project ships.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchCommand } from './bench.js';
import { compareCommand } from './compare.js';
import { deriveCommand } from './derive.js';
import { retrainCommand } from './retrain.js';
import { searchCommand } from './search.js';
import { spaceCommand } from './space.js';

try {
  await yargs(hideBin(process.argv))
    .scriptName('nni-enas')
    .command(spaceCommand)
    .command(searchCommand)
    .command(deriveCommand)
    .command(retrainCommand)
    .command(compareCommand)
    .command(benchCommand)
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .help()
    // Thrown instead of yargs' usage dump with a stack trace, so the catch below prints one line
    // (yargs writes some messages, e.g. invalid choices, over several lines).
    .fail((message, error) => {
      throw error ?? new Error(`${message.replace(/\s*\n\s*/g, ' ')} (see --help)`);
    })
    .parseAsync();
} catch (error) {
  // One line for the user, not a stack trace.
  console.error(`nni-enas: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
