/*
 * Tiny real text for RNN tests: the opening verses of the KJV corpus in ../shared (PTB format),
 * as ids over their own small vocabulary.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** CI checks the project out with ../shared beside it. */
const KJV_TRAIN = fileURLToPath(new URL('../../shared/data/kjv-ptb/kjv.train.txt', import.meta.url));

/** The first `lines` verses of the KJV training split, `<eos>` after each (~200 words for 30 lines). */
export function kjvOpening(lines: number): { tokens: Int32Array; vocabSize: number } {
  const words = readFileSync(KJV_TRAIN, 'utf8')
    .split('\n')
    .slice(0, lines)
    .flatMap((line) => [...line.split(/\s+/).filter((w) => w !== ''), '<eos>']);
  const ids = new Map<string, number>();
  const tokens = Int32Array.from(words, (w) => {
    if (!ids.has(w)) ids.set(w, ids.size);
    return ids.get(w)!;
  });
  return { tokens, vocabSize: ids.size };
}
