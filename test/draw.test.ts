import { describe, expect, it } from 'vitest';
import { drawGenotype } from '../search-spaces/draw.js';
import { ENAS_MICRO_CIFAR10, ENAS_RNN_PTB } from '../search-spaces/known.js';
import { DEFAULT_SPECS, fromTokens } from '../search-spaces/spaces.js';

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length;

describe('architecture pictures', () => {
  it('draws both micro cells with one box per op and one dashed edge per loose end', () => {
    const svg = drawGenotype(ENAS_MICRO_CIFAR10);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('normal cell');
    expect(svg).toContain('reduction cell');
    // 10 op boxes per cell; 5 + 4 loose ends go to the two concat nodes.
    expect(count(svg, /stroke="#9a3412"/g)).toBe(20);
    expect(count(svg, />concat</g)).toBe(2);
    const looseEndEdges = count(svg, /stroke-dasharray="4 3"[^>]*marker-end/g);
    expect(looseEndEdges).toBe(9);
  });

  it('draws the released PTB cell with its six loose ends averaged', () => {
    const svg = drawGenotype(ENAS_RNN_PTB);
    for (let j = 0; j < 12; j++) expect(svg).toContain(`>${j}: ${ENAS_RNN_PTB.nodes[j]!.act}<`);
    expect(count(svg, /stroke-dasharray/g)).toBe(6);
  });

  it('draws one arc per macro skip and escapes nothing it should not', () => {
    const spec = { ...DEFAULT_SPECS.macro, layers: 3 } as const;
    const svg = drawGenotype(fromTokens(spec, [0, 5, 1, 1, 1, 1]));
    expect(svg).toContain('>2: sepconv3x3<');
    expect(count(svg, /stroke-dasharray/g)).toBe(3);
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  it('draws NB201 "none" edges dashed', () => {
    const svg = drawGenotype(fromTokens(DEFAULT_SPECS.nb201, [0, 1, 2, 3, 4, 0]));
    expect(count(svg, />none</g)).toBe(2);
    expect(svg).not.toMatch(/NaN|undefined/);
  });
});
