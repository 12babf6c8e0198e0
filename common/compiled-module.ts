/*
 * Worker threads load compiled JavaScript. Under vitest the modules that start them run from the
 * TypeScript sources, where the worker's .js file is not beside them but in dist/ (npm test runs
 * tsc first).
 */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = new URL('../', import.meta.url);

/** The module `path` (relative to `base`, an import.meta.url) as a loadable .js file: beside `base`, else its build in dist/. */
export function compiledModuleUrl(path: string, base: string): URL {
  const here = new URL(path, base);
  if (existsSync(fileURLToPath(here))) return here;
  const compiled = new URL(`dist/${relative(fileURLToPath(projectRoot), fileURLToPath(here))}`, projectRoot);
  if (existsSync(fileURLToPath(compiled))) return compiled;
  throw new Error(`cannot find ${fileURLToPath(here)}: run tsc first`);
}
