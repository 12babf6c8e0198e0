/*
 * One place where outside input (files, NNI frames, classArgs, CLI configs) meets a JSON schema.
 * Errors name the offending key so a user can fix the file or config at once.
 */
import { Ajv, type ErrorObject } from 'ajv';

const OPTIONS = { allErrors: true, strict: true, allowUnionTypes: true, verbose: true } as const;
/**
 * Schemas are not checked against JSON Schema's meta-schema when compiled: compiling the
 * meta-schema costs 22 ms of every trial's start. test/schemas.test.ts checks every schema in
 * `checkerSchemas` instead, with `schemaAjv()`.
 */
const ajv = new Ajv({ ...OPTIONS, validateSchema: false });

/** An Ajv that checks each schema against the meta-schema, as the one in use does not. */
export const schemaAjv = (): Ajv => new Ajv(OPTIONS);

/** Every schema handed to compileChecker so far, with what it checks. */
export const checkerSchemas: { what: string; schema: object }[] = [];

/** Thrown when outside data does not match its schema; `problems` has one line per key. */
export class ValidationError extends Error {
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`${what}: ${problems.join('; ')}`);
    this.name = 'ValidationError';
  }
}

function describe(error: ErrorObject): string {
  const at = error.instancePath ? error.instancePath.slice(1).replaceAll('/', '.') : '';
  const where = at ? `key "${at}"` : 'value';
  switch (error.keyword) {
    case 'required':
      return `missing key "${[at, error.params.missingProperty].filter(Boolean).join('.')}"`;
    case 'additionalProperties':
      return `unknown key "${[at, error.params.additionalProperty].filter(Boolean).join('.')}"`;
    case 'enum':
      return `${where}: ${JSON.stringify(error.data)} is not one of ${JSON.stringify(error.params.allowedValues)}`;
    case 'const':
      return `${where}: ${JSON.stringify(error.data)} must be ${JSON.stringify(error.params.allowedValue)}`;
    default:
      return `${where} ${error.message ?? 'is invalid'}`;
  }
}

/**
 * A checker of `schema` that returns its input typed as T, or throws a ValidationError naming
 * every offending key.
 */
export function compileChecker<T>(schema: object, what: string): (data: unknown) => T {
  // Compiled on first use: a process (a trial starting, above all) pays only for the schemas it checks.
  let validate: ReturnType<typeof ajv.compile> | undefined;
  checkerSchemas.push({ what, schema });
  return (data: unknown): T => {
    validate ??= ajv.compile(schema);
    if (validate(data)) return data as T;
    const problems = (validate.errors ?? []).filter((e) => e.keyword !== 'if').map(describe);
    throw new ValidationError(what, [...new Set(problems)]);
  };
}
