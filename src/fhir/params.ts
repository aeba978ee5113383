/**
 * The kick-off request of a Group `$export`, read and checked as the Bulk Data IG (2.0.0) says:
 * the parameters of a GET query or a POST `Parameters` body, repeated ones merged, `Prefer` read
 * as a list. Anything the server does not support is a 400 — or, under `Prefer: handling=lenient`,
 * skipped and reported in the manifest's error files.
 */
import { BULK_TYPES, type BulkParams, type BulkType } from '../export/bulk-job.ts';
import { INSTANT_EXAMPLES, parseInstant, type ImmunizationCondition } from '../export/index.ts';
import { FhirError } from './outcome.ts';

export const OUTPUT_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];

/** The parameters as name → values, from either form of the request. */
export type RawParams = Map<string, string[]>;

export function queryParams(query: Record<string, string | string[] | undefined>): RawParams {
  const m: RawParams = new Map();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) m.set(k, Array.isArray(v) ? v : [v]);
  return m;
}

/** A POST body: a FHIR Parameters resource; each parameter's value[x] as text (a reference's reference). */
export function bodyParams(body: unknown): RawParams {
  const b = body as { resourceType?: unknown; parameter?: unknown } | undefined;
  if (!b || typeof b !== 'object' || b.resourceType !== 'Parameters') throw invalid('the body must be a FHIR Parameters resource');
  if (b.parameter !== undefined && !Array.isArray(b.parameter)) throw invalid('Parameters.parameter must be an array');
  const m: RawParams = new Map();
  for (const [i, p] of ((b.parameter ?? []) as Record<string, unknown>[]).entries()) {
    const name = p?.name;
    if (typeof name !== 'string') throw invalid(`Parameters.parameter[${i}].name is missing`);
    const valueKey = Object.keys(p).find((k) => k.startsWith('value'));
    const v = valueKey === undefined ? undefined : p[valueKey];
    const text = valueKey === 'valueReference' ? (v as { reference?: unknown } | undefined)?.reference : v;
    if (typeof text !== 'string') throw invalid(`Parameters.parameter[${i}] (${name}) has no value the server can read`);
    m.set(name, [...(m.get(name) ?? []), text]);
  }
  return m;
}

/** `Prefer`'s preferences, lower-cased: a comma-separated list, possibly over several headers. */
export function preferences(header: string | string[] | undefined): Set<string> {
  const all = (Array.isArray(header) ? header : header === undefined ? [] : [header]).flatMap((h) => h.split(','));
  return new Set(all.map((p) => p.trim().toLowerCase().replace(/\s*=\s*/, '=')).filter(Boolean));
}

const KNOWN = new Set(['_outputFormat', '_since', '_type', '_elements', 'patient', '_typeFilter', 'includeAssociatedData', '_until', 'organizeOutputBy', 'allowPartialManifests']);

export function parseKickOff(raw: RawParams, o: { method: 'GET' | 'POST'; lenient: boolean }): Omit<BulkParams, 'baseUrl'> {
  const skipped: string[] = [];
  const refuse = (message: string) => {
    if (!o.lenient) throw invalid(message);
    skipped.push(message);
  };
  const list = (name: string) => (raw.get(name) ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);

  for (const name of raw.keys()) if (!KNOWN.has(name) || ['includeAssociatedData', '_until', 'organizeOutputBy', 'allowPartialManifests'].includes(name)) refuse(`parameter ${name} is not supported`);

  const formats = raw.get('_outputFormat') ?? [];
  if (formats.length > 1) throw invalid('_outputFormat is given more than once');
  if (formats[0] !== undefined && !OUTPUT_FORMATS.includes(formats[0])) throw invalid(`_outputFormat "${formats[0]}" is not supported (supported: ${OUTPUT_FORMATS.join(', ')})`);

  const sinces = raw.get('_since') ?? [];
  if (sinces.length > 1) throw invalid('_since is given more than once');
  const since = sinces[0] === undefined ? undefined : instant(sinces[0]);

  let types: BulkType[] = [...BULK_TYPES];
  const asked = list('_type');
  if (asked.length > 0) {
    types = [];
    for (const t of new Set(asked)) {
      if ((BULK_TYPES as readonly string[]).includes(t)) types.push(t as BulkType);
      else refuse(`_type ${t} is not exported by this server (it exports ${BULK_TYPES.join(', ')})`);
    }
    if (types.length === 0) throw invalid('none of the requested _type values is exported by this server');
  }

  let elements: BulkParams['elements'];
  const els = list('_elements');
  if (els.length > 0) {
    elements = {};
    for (const e of els) {
      const m = /^(?:([A-Z][A-Za-z]+)\.)?([a-z][A-Za-z0-9]*)$/.exec(e);
      if (!m) {
        refuse(`_elements "${e}" is not an element name`);
        continue;
      }
      const [, type, element] = m as unknown as [string, string | undefined, string];
      if (type !== undefined && !(BULK_TYPES as readonly string[]).includes(type)) {
        refuse(`_elements "${e}" names a type this server does not export`);
        continue;
      }
      for (const t of type ? [type as BulkType] : types) (elements[t] ??= []).push(element);
    }
  }

  let patients: string[] | undefined;
  const refs = raw.get('patient') ?? [];
  if (refs.length > 0) {
    if (o.method !== 'POST') throw invalid('the patient parameter is only accepted in a POST kick-off request');
    patients = refs.map((r) => {
      const m = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(r.trim());
      if (!m) throw invalid(`patient "${r}" is not a reference of the form Patient/<id>`);
      return m[1]!;
    });
  }

  const filters: ImmunizationCondition[][] = [];
  // One _typeFilter value may hold several queries, comma-separated (the IG): a comma followed by a
  // resource type starts the next query; any other comma lists a parameter's alternatives.
  for (const f of (raw.get('_typeFilter') ?? []).flatMap((v) => v.split(/,(?=[A-Z][A-Za-z]*(?:\?|,|$))/))) {
    try {
      filters.push(typeFilter(f));
    } catch (e) {
      refuse((e as Error).message);
    }
  }

  return {
    types,
    ...(since ? { since } : {}),
    ...(elements ? { elements } : {}),
    ...(patients ? { patients } : {}),
    ...(filters.length > 0 ? { filters } : {}),
    ...(skipped.length > 0 ? { skipped } : {}),
  };
}

/** `_since` as a UTC ISO string, read by the one instant parser (src/export); a 400 when it is not an instant. */
export function instant(v: string): string {
  const t = parseInstant(v);
  if (t === undefined) throw invalid(`_since "${v}" is not a FHIR instant such as ${INSTANT_EXAMPLES}`);
  return t;
}

/** One `_typeFilter`: `Immunization?` and search parameters this server applies to Immunizations. */
function typeFilter(f: string): ImmunizationCondition[] {
  const q = f.indexOf('?');
  const type = q < 0 ? f : f.slice(0, q);
  if (type !== 'Immunization') throw new Error(`_typeFilter "${f}": only Immunization searches are supported`);
  const conditions: ImmunizationCondition[] = [];
  for (const [name, value] of new URLSearchParams(q < 0 ? '' : f.slice(q + 1))) {
    const values = value.split(',').filter(Boolean);
    if (values.length === 0) throw new Error(`_typeFilter "${f}": ${name} has no value`);
    if (name === 'status') {
      const bad = values.find((v) => !['completed', 'entered-in-error', 'not-done'].includes(v));
      if (bad !== undefined) throw new Error(`_typeFilter "${f}": status "${bad}" is not an Immunization status`);
      conditions.push({ param: 'status', values });
    } else if (name === 'vaccine-code') {
      conditions.push({ param: 'vaccine-code', values: values.map((v) => (v.includes('|') ? { system: v.slice(0, v.indexOf('|')), code: v.slice(v.indexOf('|') + 1) } : { code: v })) });
    } else if (name === 'date') {
      // Each date parameter bounds the occurrence (repeated, they all hold); alternatives would need a list.
      if (values.length > 1) throw new Error(`_typeFilter "${f}": give one value per date parameter (repeat it for a range)`);
      for (const v of values) {
        const m = /^(eq|ge|gt|le|lt)?(\d{4}(-\d{2}(-\d{2})?)?)$/.exec(v);
        if (!m) throw new Error(`_typeFilter "${f}": date "${v}" must be a date (YYYY, YYYY-MM or YYYY-MM-DD) with an optional eq, ge, gt, le or lt`);
        conditions.push({ param: 'date', comparator: (m[1] ?? 'eq') as 'eq', value: m[2]! });
      }
    } else throw new Error(`_typeFilter "${f}": search parameter ${name} is not supported (supported: status, vaccine-code, date)`);
  }
  return conditions;
}

function invalid(message: string): FhirError {
  return new FhirError(400, 'invalid', message);
}
