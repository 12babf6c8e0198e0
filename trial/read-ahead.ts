/*
 * The data a trial will load, read ahead on a worker thread (trial/prefetch.ts) from the moment
 * the process starts. Only light modules here: trial/main.ts imports this before the rest of the
 * trial, whose loading takes ≈150 ms that the worker puts to use.
 */
import { FASHION_MNIST_DIR, fashionMnistFiles } from './data/idx.js';
import { prefetchCorpus, prefetchFiles } from './prefetch.js';

/**
 * Reads ahead what the loader of `dataset` will read first: Fashion-MNIST's training files (the
 * gunzip is most of its load) or a text corpus (the tokenising is). The other datasets load fast
 * enough on their own. Never rejects.
 */
export function readAhead(dataset: string, dataDir: string | undefined): Promise<void> | undefined {
  if (dataset === 'fashion-mnist') return prefetchFiles(Object.values(fashionMnistFiles(dataDir ?? FASHION_MNIST_DIR, 'train')));
  if (dataset === 'ptb' && dataDir !== undefined) return prefetchCorpus(dataDir);
  return undefined;
}

/**
 * `--name value` or `--name=value` in `args`, the last one given. A peek, not a parse: yargs
 * parses the command line once the trial's modules have loaded, and decides; a form this misses
 * only means no read-ahead before that.
 */
function peek(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  args.forEach((arg, i) => {
    if (arg === `--${name}` && i + 1 < args.length) value = args[i + 1];
    else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
  });
  return value;
}

/** The read-ahead of the dataset the command line names, when it names one (config.yml's trial commands do). */
export function readAheadForCommandLine(args: readonly string[]): Promise<void> | undefined {
  const dataset = peek(args, 'dataset');
  return dataset === undefined || peek(args, 'mode') === 'table' ? undefined : readAhead(dataset, peek(args, 'data-dir'));
}
