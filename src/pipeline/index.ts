/**
 * Pipeline files: the agreed flat-file spec for one partner, validated at load with errors that
 * name the offending key, so a typo in a pipeline never turns into a silently wrong match.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { LOGICAL_FIELDS, type LogicalField } from '../model/index.ts';
import { RostermatchError } from '../errors/index.ts';
import { DEFAULT_LEVELS } from '../match/model.ts';

const logicalField = z.enum(LOGICAL_FIELDS);
const headerList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));
const slug = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'use lower-case letters, digits and hyphens');

const DATE_TOKENS = /^(YYYY|YY|MM|M|DD|D|[-/. ])+$/;

export const PipelineSchema = z
  .object({
    partner: slug,
    displayName: z.string().min(1),
    file: z
      .object({
        /** Glob of file names this partner may drop, e.g. "*.csv". @defaultValue "*" */
        namePattern: z.string().min(1).default('*'),
        /** @defaultValue utf-8 */
        encoding: z.enum(['utf-8', 'windows-1252']).default('utf-8'),
        /** @defaultValue "," */
        delimiter: z.string().length(1).default(','),
      })
      .strict()
      .default({ namePattern: '*', encoding: 'utf-8', delimiter: ',' }),
    columns: z.partialRecord(logicalField, headerList),
    dates: z
      .object({ birthDate: z.array(z.string().regex(DATE_TOKENS, 'a date format is made of YYYY, YY, MM, M, DD, D and - / .')).min(1) })
      .strict()
      .default({ birthDate: ['YYYY-MM-DD'] }),
    /** When the partner's record id is an identifier the IIS also holds (a clinic MRN), its system. */
    identifier: z.object({ system: z.string().min(1) }).strict().optional(),
    group: z
      .object({
        id: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, 'a FHIR id: letters, digits, - and ., at most 64'),
        name: z.string().min(1),
        mode: z.enum(['replace', 'append']),
        /**
         * A replace file that would remove more than this share of the Group (and at least
         * HOLD_MIN_REMOVALS people) is held for an operator's confirmation. @defaultValue 0.2
         */
        maxRemoveShare: z.number().min(0).max(1).default(0.2),
      })
      .strict(),
    /** m/u overrides per field and comparison level, over the trained model and the defaults. */
    model: z
      .record(z.string(), z.record(z.string(), z.object({ m: z.number().gt(0).lte(1).optional(), u: z.number().gt(0).lte(1).optional() }).strict()))
      .optional(),
    thresholds: z
      .object({ match: z.number(), possible: z.number(), margin: z.number().positive().optional() })
      .strict()
      .refine((t) => t.possible <= t.match, { message: 'possible must not be above match' })
      .default({ match: 18, possible: 6 }),
  })
  .strict()
  .superRefine((p, ctx) => {
    const has = (f: LogicalField) => p.columns[f] !== undefined;
    for (const f of ['recordId', 'birthDate'] as const) {
      if (!has(f)) ctx.addIssue({ code: 'custom', path: ['columns', f], message: `columns.${f} is required` });
    }
    if (!has('fullName') && !(has('given') && has('family'))) {
      ctx.addIssue({ code: 'custom', path: ['columns'], message: 'columns needs given and family, or fullName' });
    }
    for (const [field, levels] of Object.entries(p.model ?? {})) {
      const known = (DEFAULT_LEVELS as Record<string, Record<string, unknown>>)[field];
      if (!known) {
        ctx.addIssue({ code: 'custom', path: ['model', field], message: `no field "${field}" (fields: ${Object.keys(DEFAULT_LEVELS).join(', ')})` });
        continue;
      }
      for (const level of Object.keys(levels)) {
        if (!(level in known)) ctx.addIssue({ code: 'custom', path: ['model', field, level], message: `no level "${level}" (levels: ${Object.keys(known).join(', ')})` });
      }
    }
  });

export type Pipeline = z.infer<typeof PipelineSchema>;

/** Parses and validates pipeline text; `source` names the file in errors. */
export function parsePipeline(text: string, source: string): Pipeline {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    const line = e instanceof YAMLParseError ? e.linePos?.[0]?.line : undefined;
    throw new RostermatchError('PIPELINE_INVALID', 'not valid YAML', { file: source, ...(line ? { line } : {}) }, { cause: e });
  }
  const parsed = PipelineSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join('.') || '(top level)';
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : '';
    throw new RostermatchError('PIPELINE_INVALID', `${key}: ${issue.message}${more}`, { file: source, field: key });
  }
  return parsed.data;
}

export async function loadPipelineFile(file: string): Promise<Pipeline> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new RostermatchError('PIPELINE_NOT_FOUND', 'cannot read the pipeline file', { file }, { cause: e });
  }
  return parsePipeline(text, file);
}

/** The pipeline for `partner` from `dir` (pipelines/<partner>.yaml), checking the file is that partner's. */
export async function loadPartnerPipeline(dir: string, partner: string): Promise<Pipeline> {
  const file = path.join(dir, `${partner}.yaml`);
  const pipeline = await loadPipelineFile(file);
  if (pipeline.partner !== partner) {
    throw new RostermatchError('PIPELINE_INVALID', `partner is "${pipeline.partner}", not "${partner}"`, { file, field: 'partner' });
  }
  return pipeline;
}
