/*
 * Every JSON schema that checks outside input is itself a valid schema: the processes compile
 * them without the meta-schema check (common/validate.ts), so this test is where a malformed
 * schema (a misspelt type, a bad enum) is caught.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkerSchemas, schemaAjv } from '../common/validate.js';
import { DEFAULT_SPECS, fromParams, fromTokens, toParams, uniformTokens } from '../search-spaces/spaces.js';

const SOURCE_DIRS = ['common', 'trial', 'tuner', 'embedded', 'compare', 'search-spaces', 'cli'];
const root = join(import.meta.dirname, '..');

/** Source files (relative, .ts) that define a checker. */
function checkerModules(): string[] {
  return SOURCE_DIRS.flatMap((dir) =>
    readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !(dir === 'common' && file === 'validate.ts'))
      .map((file) => join(dir, file))
      .filter((path) => readFileSync(join(root, path), 'utf8').includes('compileChecker<')),
  );
}

describe('schemas', () => {
  test('every checker schema is valid against the JSON Schema meta-schema', async () => {
    const modules = checkerModules();
    expect(modules.length).toBeGreaterThanOrEqual(10);
    for (const module of modules) await import(`../${module.replace(/\.ts$/, '.js')}`);
    // The parameter checkers are made per space on first use.
    for (const spec of Object.values(DEFAULT_SPECS)) fromParams(spec, toParams(fromTokens(spec, uniformTokens(spec, 0, 0)), spec));
    const perModule = modules.map((path) => readFileSync(join(root, path), 'utf8').split('compileChecker<').length - 1);
    expect(checkerSchemas.length).toBeGreaterThanOrEqual(perModule.reduce((a, b) => a + b, 0));
    const ajv = schemaAjv();
    const invalid = checkerSchemas.filter(({ schema }) => !ajv.validateSchema(schema)).map(({ what }) => `${what}: ${ajv.errorsText()}`);
    expect(invalid).toEqual([]);
  });

  test('a malformed schema is caught', () => {
    expect(schemaAjv().validateSchema({ type: 'objekt' })).toBe(false);
  });
});
