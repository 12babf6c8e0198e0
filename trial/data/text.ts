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

/** JavaScript's \s beyond ASCII (no-break and typographic spaces, …), tested only for characters ≥ 128. */
const UNICODE_SPACE = /\s/;

/**
 * Calls `emit` with every token of the file at `path` and its 1-based line, and <eos> (appended:
 * true) at the end of every line, an empty one too; a trailing newline ends the last line. Tokens
 * are separated by whitespace as `split(/\s+/)` separates them. One scan over the text, no
 * per-line arrays.
 */
function forEachToken(path: string, emit: (token: string, line: number, appended: boolean) => void): void {
  const text = new TextDecoder().decode(readBytes(path, EXPECTED));
  let line = 1;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || (c >= 128 && UNICODE_SPACE.test(text[i]!));
    if (!space) {
      if (start < 0) start = i;
      continue;
    }
    if (start >= 0) emit(text.slice(start, i), line, false);
    start = -1;
    if (c === 10) emit(EOS, line++, true);
  }
  if (start >= 0) emit(text.slice(start), line, false);
  if (text.length > 0 && !text.endsWith('\n')) emit(EOS, line, true);
}

/**
 * The training file's token ids and vocabulary: ids by descending frequency, ties alphabetical
 * (code-unit order), so ids never depend on the machine. Counted in first-seen order, then
 * renumbered.
 */
function readTraining(path: string): { vocab: string[]; ids: Int32Array } {
  const firstSeen = new Map<string, number>();
  const counts: number[] = [];
  const seen: number[] = [];
  let words = 0;
  forEachToken(path, (token, _, appended) => {
    let id = firstSeen.get(token);
    if (id === undefined) {
      id = counts.length;
      firstSeen.set(token, id);
      counts.push(0);
    }
    counts[id]!++;
    seen.push(id);
    if (!appended) words++;
  });
  if (words === 0) throw new DataError(path, `no words, expected ${EXPECTED}`);
  const tokens = [...firstSeen.keys()];
  const order = tokens.map((_, id) => id).sort((a, b) => counts[b]! - counts[a]! || (tokens[a]! < tokens[b]! ? -1 : tokens[a]! > tokens[b]! ? 1 : 0));
  const finalId = new Int32Array(order.length);
  order.forEach((id, rank) => (finalId[id] = rank));
  return { vocab: order.map((id) => tokens[id]!), ids: Int32Array.from(seen, (id) => finalId[id]!) };
}

/** The file's token ids in the training vocabulary `ids`: unseen words become <unk>, or are an error naming the line if there is none. */
function encode(path: string, ids: Map<string, number>): Int32Array {
  const unk = ids.get(UNK);
  const out: number[] = [];
  forEachToken(path, (token, line) => {
    const id = ids.get(token) ?? unk;
    if (id === undefined) throw new DataError(`${path}:${line}`, `word "${token}" is not in the training vocabulary, which has no ${UNK}`);
    out.push(id);
  });
  return Int32Array.from(out);
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
  const { vocab, ids: train } = readTraining(join(dir, `${prefix}.train.txt`));
  const ids = new Map(vocab.map((w, i) => [w, i]));
  const load = (split: string): Int32Array => encode(join(dir, `${prefix}.${split}.txt`), ids);
  return { vocab, train, valid: load('valid'), test: load('test') };
}
