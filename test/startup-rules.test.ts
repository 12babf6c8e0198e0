/*
 * Two rules that keep trials starting fast (bench trial-start measures them): TensorFlow.js is
 * loaded with require, never an ESM import (Node would lex its CommonJS bundles for export
 * names, ≈70 ms per start, trial/backend.ts); and trial/main.ts starts the data read-ahead
 * before the heavy modules load, so its static imports must not reach them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, test } from 'vitest';

const root = join(import.meta.dirname, '..');
const SOURCE_DIRS = ['common', 'trial', 'tuner', 'embedded', 'compare', 'search-spaces', 'cli', 'bench'];

/** Module specifiers of the static imports (not `import type`, not `import(…)`) in `source`. */
function staticImports(source: string): string[] {
  return [...source.matchAll(/^import\s+(?!type\b)(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

describe('start-up rules', () => {
  test('no source module imports TensorFlow.js as an ES module', () => {
    const offenders = SOURCE_DIRS.flatMap((dir) =>
      readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
        .filter((file) => file.endsWith('.ts'))
        .map((file) => join(dir, file))
        .filter((path) => staticImports(readFileSync(join(root, path), 'utf8')).some((spec) => spec.startsWith('@tensorflow/'))),
    );
    expect(offenders).toEqual([]);
  });

  test("trial/main.ts's static imports reach no heavy module (TensorFlow.js, yargs, ajv)", () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (path: string) => {
      if (seen.has(path)) return;
      seen.add(path);
      for (const spec of staticImports(readFileSync(join(root, path), 'utf8'))) {
        if (spec.startsWith('.')) visit(normalize(join(dirname(path), spec.replace(/\.js$/, '.ts'))));
        else if (!spec.startsWith('node:')) packages.add(spec);
      }
    };
    visit('trial/main.ts');
    expect(seen.size).toBeGreaterThan(3);
    expect([...packages]).toEqual([]);
  });

  test('the import scan sees what it must', () => {
    expect(staticImports("import tf = require('x');\nimport * as y from '@tensorflow/tfjs-core';\nimport type { Z } from 'z';\nimport { a,\n  b } from './a.js';\nimport './side.js';")).toEqual([
      '@tensorflow/tfjs-core',
      './a.js',
      './side.js',
    ]);
  });
});
