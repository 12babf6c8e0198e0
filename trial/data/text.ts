/*
 * Penn Treebank-style text (<prefix>.{train,valid,test}.txt: one sentence per line, tokens
 * separated by whitespace, rare words already replaced by <unk>), tokenised as the standard PTB
 * reader does: every line, including an empty one, ends with <eos>.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readBytes } from './io.js';
import { takePrefetchedCorpus } from '../prefetch.js';
import { DataError, type Corpus } from './types.js';

export const EOS = '<eos>';
export const UNK = '<unk>';

const EXPECTED = 'Penn Treebank text: one sentence per line, whitespace-separated tokens';

/** The file's lines as token lists, <eos> appended to each; a trailing newline ends the last line. */
function readLines(path: string): string[][] {
  const text = new TextDecoder().decode(readBytes(path, EXPECTED));
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line) => [...line.split(/\s+/).filter((t) => t !== ''), EOS]);
}

/** Vocabulary by descending frequency, ties alphabetical (code-unit order), so ids never depend on the machine. */
function buildVocab(lines: string[][]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) for (const t of line) counts.set(t, (counts.get(t) ?? 0) + 1);
  return [...counts.keys()].sort((a, b) => counts.get(b)! - counts.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
}

function encode(path: string, lines: string[][], ids: Map<string, number>): Int32Array {
  const unk = ids.get(UNK);
  const out = new Int32Array(lines.reduce((s, l) => s + l.length, 0));
  let at = 0;
  lines.forEach((line, i) => {
    for (const token of line) {
      const id = ids.get(token) ?? unk;
      if (id === undefined)
        throw new DataError(
          `${path}:${i + 1}`,
          `word "${token}" is not in the training vocabulary, which has no ${UNK}`,
        );
      out[at++] = id;
    }
  });
  return out;
}

/** The only `<prefix>.train.txt` in `dir`, or an error listing what is there. */
function findPrefix(dir: string): string {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new DataError(dir, `cannot list (${(e as NodeJS.ErrnoException).code}), expected a directory of ${EXPECTED}`);
  }
  const prefixes = names.filter((n) => n.endsWith('.train.txt')).map((n) => n.slice(0, -'.train.txt'.length));
  if (prefixes.length === 1) return prefixes[0]!;
  if (prefixes.length === 0) throw new DataError(dir, `no <prefix>.train.txt file, expected ${EXPECTED}`);
  throw new DataError(dir, `several corpora (${prefixes.sort().join(', ')}), pass the prefix of one`);
}

/**
 * Loads `<dir>/<prefix>.{train,valid,test}.txt`; without a prefix, the only corpus in `dir`
 * (so both ptb.*.txt and kjv.*.txt work). The vocabulary comes from the training file alone;
 * unseen valid/test words become <unk>, or are an error if the vocabulary has none.
 */
export function loadCorpus(dir: string, prefix?: string): Corpus {
  return (prefix === undefined && takePrefetchedCorpus(dir)) || loadCorpusFiles(dir, prefix ?? findPrefix(dir));
}

function loadCorpusFiles(dir: string, prefix: string): Corpus {
  const trainPath = join(dir, `${prefix}.train.txt`);
  const trainLines = readLines(trainPath);
  if (trainLines.every((l) => l.length === 1)) throw new DataError(trainPath, `no words, expected ${EXPECTED}`);
  const vocab = buildVocab(trainLines);
  const ids = new Map(vocab.map((w, i) => [w, i]));
  const load = (split: string): Int32Array => {
    const path = join(dir, `${prefix}.${split}.txt`);
    return encode(path, readLines(path), ids);
  };
  return { vocab, train: encode(trainPath, trainLines, ids), valid: load('valid'), test: load('test') };
}
