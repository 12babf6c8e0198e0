#!/usr/bin/env node
/*
 * The `nni-enas` command line: one entry point for every tool the project ships.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchCommand } from './bench.js';
import { compareCommand } from './compare.js';
import { spaceCommand } from './space.js';

try {
  await yargs(hideBin(process.argv))
    .scriptName('nni-enas')
    .command(spaceCommand)
    .command(compareCommand)
    .command(benchCommand)
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .help()
    .parseAsync();
} catch (error) {
  // One line for the user, not a stack trace.
  console.error(`nni-enas: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
