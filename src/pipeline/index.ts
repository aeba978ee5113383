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
/**
 * Header names a field may have, or `{ column: N }`: the N-th column (from 1) whatever its header
 * says — the way to pick one of two columns that carry the same header.
 */
const columnPosition = z.object({ column: z.number().int().min(1).max(10_000) }).strict();
const headerList = z.union([
  z.string().min(1).transform((v) => [v]),
  z.array(z.string().min(1)).min(1),
  columnPosition,
]);
export type ColumnSpec = z.infer<typeof headerList>;
const slug = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'use lower-case letters, digits and hyphens');

/**
 * Scores are sums of per-field log2(m/u): with the default levels a pair agreeing on every field
 * but an identifier scores about 64 and one disagreeing on every field about -36. A threshold
 * outside these ranges matches everything or nothing (a match threshold of 1e308 once emptied a
 * Group into the review queue), so it is refused rather than run.
 */
export const THRESHOLD_RANGE = { match: [1, 60], possible: [0, 59], margin: [1, 30] } as const;
function bits([lo, hi]: readonly [number, number]): string {
  return `must be between ${lo} and ${hi} (log2 odds)`;
}

const identifierName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lower-case letters, digits and hyphens');

const DATE_TOKENS = /^(YYYY|YY|MM|M|DD|D|[-/. ])+$/;

/** How a file changes its Group: see `group.mode`. */
export const GROUP_MODES = ['replace', 'append', 'remove'] as const;

/**
 * The values an action column may hold (issue 12), compared without case and surrounding spaces:
 * `add`/`A` to join the Group, `remove`/`delete`/`D` to leave it — the words and the A/D letters
 * of enrolment and HL7 v2 feeds. Anything else, a blank cell included, makes the row invalid:
 * guessing which way a row meant would either keep sharing a person's record the partner asked
 * to stop, or drop someone it asked to keep. `U` (update) and `R` are not taken: in some feeds
 * they mean "changed, still enrolled", in others "replace".
 */
export const ACTION_VALUES: Readonly<Record<string, 'add' | 'remove'>> = { add: 'add', a: 'add', remove: 'remove', delete: 'remove', d: 'remove' };

/**
 * How an HL7 v2 partner's PID-3 identifiers feed matching (issue 13): each repetition whose type
 * (CX-5) and, when given, assigning authority (CX-4) fit is compared as `system`, the way a
 * roster's identifier column is.
 */
const v2Identifier = z
  .object({
    type: z.string().regex(/^[A-Z]{1,5}$/, 'an HL7 identifier type code (table 0203), e.g. SS, MA, MR, PI'),
    authority: z.string().min(1).optional(),
    system: z.string().min(1),
    /** @defaultValue generic */
    kind: z.enum(['ssn', 'ssn-last4', 'generic']).default('generic'),
    name: identifierName.optional(),
  })
  .strict();

/** A partner's HL7 v2 feed (issue 13): whose messages these are and what they do to its Group. */
const hl7v2Spec = z
  .object({
    /** MSH-4 (its first component) of every message: another facility's message is refused, never matched for this partner. */
    sendingFacility: z.string().min(1),
    /** Whether a matched VXU's patient joins the Group (seed 001's policy choice). */
    vxu: z.enum(['add', 'ignore']),
    /** Whether a matched QBP's patient joins the Group: some jurisdictions do not take a query for a care relationship. */
    qbp: z.enum(['add', 'ignore']),
    /** The PID-3 identifier that is the partner's record id (review decisions follow it). @defaultValue { type: MR } */
    recordId: z
      .object({ type: z.string().regex(/^[A-Z]{1,5}$/).default('MR'), authority: z.string().min(1).optional(), system: z.string().min(1).optional() })
      .strict()
      .default({ type: 'MR' }),
    identifiers: z.array(v2Identifier).max(10).default([]),
    /** Seed 000's option: the Group id as a non-unique PID-3 identifier (type PT, authority FHIR-GROUP) in an RSP's matched PID. @defaultValue false */
    groupIdInResponse: z.boolean().default(false),
    /** The assigning authority (CX-4) under which an RSP lists the IIS's FHIR Patient id. @defaultValue IIS-FHIR */
    patientIdAuthority: z.string().min(1).default('IIS-FHIR'),
  })
  .strict();
export type Hl7v2Spec = z.infer<typeof hl7v2Spec>;

export const PipelineSchema = z
  .object({
    partner: slug,
    displayName: z.string().min(1),
    /** `delimited`: rosters (CSV and the like); `hl7v2`: VXU and QBP messages, bare or in batches (issue 13). @defaultValue delimited */
    format: z.enum(['delimited', 'hl7v2']).default('delimited'),
    hl7v2: hl7v2Spec.optional(),
    file: z
      .object({
        /** Glob of file names this partner may drop, e.g. "*.csv". @defaultValue "*" */
        namePattern: z.string().min(1).default('*'),
        /** @defaultValue utf-8 */
        encoding: z.enum(['utf-8', 'windows-1252', 'utf-16le', 'utf-16be']).default('utf-8'),
        /** @defaultValue "," */
        delimiter: z
          .string()
          .length(1, 'one character, such as "," or "|" or a tab')
          .refine((d) => !/[\r\n]/.test(d), 'a line break cannot separate cells')
          .refine((d) => d !== '"', 'the quote character cannot separate cells')
          .refine((d) => !/[\p{L}\p{N}\p{Cc}\p{Cf}]/u.test(d) || d === '\t', 'a letter, digit or control character cannot separate cells')
          .default(','),
      })
      .strict()
      .default({ namePattern: '*', encoding: 'utf-8', delimiter: ',' }),
    /** Required for delimited files; an HL7 v2 pipeline has none (PID says where each field is). */
    columns: z.partialRecord(logicalField, headerList).default({}),
    dates: z
      .object({ birthDate: z.array(z.string().regex(DATE_TOKENS, 'a date format is made of YYYY, YY, MM, M, DD, D and - / .')).min(1) })
      .strict()
      .default({ birthDate: ['YYYY-MM-DD'] }),
    /** When the partner's record id is an identifier the IIS also holds (a clinic MRN), its system. */
    identifier: z.object({ system: z.string().min(1), name: identifierName.optional() }).strict().optional(),
    /**
     * Columns that carry identifiers the IIS also holds (SSN, Medicaid id, state student id): each
     * with the FHIR system the index stores it under. Agreement is strong evidence for a match, a
     * different value strong evidence against.
     */
    identifiers: z
      .array(
        z
          .object({
            columns: headerList,
            system: z.string().min(1),
            /** @defaultValue generic */
            kind: z.enum(['ssn', 'ssn-last4', 'generic']).default('generic'),
            /** The label in reasons, e.g. identifier[medicaid]:agree. @defaultValue the system's last segment */
            name: identifierName.optional(),
          })
          .strict(),
      )
      .max(10)
      .default([]),
    /** Values this partner's files use for "not known", on top of the built-in lists. */
    placeholders: z
      .object({
        names: z.array(z.string().min(1)).default([]),
        streets: z.array(z.string().min(1)).default([]),
        identifiers: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .optional(),
    group: z
      .object({
        id: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, 'a FHIR id: letters, digits, - and ., at most 64'),
        name: z.string().min(1),
        /**
         * `replace`: the Group becomes the file's matched people; `append`: they are added (or,
         * with `columns.action`, each row says add or remove); `remove`: they leave (issue 12).
         */
        mode: z.enum(GROUP_MODES),
        /**
         * A file that would remove more than this share of the Group (and at least
         * HOLD_MIN_REMOVALS people) — a partial replace file, a remove file or rows marked remove —
         * is held for an operator's confirmation. @defaultValue 0.2
         */
        maxRemoveShare: z.number().min(0).max(1).default(0.2),
      })
      .strict(),
    /** m/u overrides per field and comparison level, over the trained model and the defaults. */
    model: z
      .record(z.string(), z.record(z.string(), z.object({ m: z.number().gt(0).lte(1).optional(), u: z.number().gt(0).lte(1).optional() }).strict()))
      .optional(),
    thresholds: z
      .object({
        match: z.number().min(THRESHOLD_RANGE.match[0], bits(THRESHOLD_RANGE.match)).max(THRESHOLD_RANGE.match[1], bits(THRESHOLD_RANGE.match)),
        possible: z.number().min(THRESHOLD_RANGE.possible[0], bits(THRESHOLD_RANGE.possible)).max(THRESHOLD_RANGE.possible[1], bits(THRESHOLD_RANGE.possible)),
        margin: z.number().min(THRESHOLD_RANGE.margin[0], bits(THRESHOLD_RANGE.margin)).max(THRESHOLD_RANGE.margin[1], bits(THRESHOLD_RANGE.margin)).optional(),
      })
      .strict()
      .refine((t) => t.possible < t.match, { message: 'possible must be below match' })
      .default({ match: 18, possible: 6 }),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.format === 'hl7v2') return refineHl7v2(p, ctx);
    if (p.hl7v2) ctx.addIssue({ code: 'custom', path: ['hl7v2'], message: 'hl7v2 settings need format: hl7v2' });
    const has = (f: LogicalField) => p.columns[f] !== undefined;
    const positions = new Map<number, LogicalField>();
    for (const [f, spec] of Object.entries(p.columns) as [LogicalField, ColumnSpec][]) {
      if (Array.isArray(spec)) continue;
      const other = positions.get(spec.column);
      if (other) ctx.addIssue({ code: 'custom', path: ['columns', f], message: `column ${spec.column} is already columns.${other}` });
      positions.set(spec.column, f);
    }
    for (const f of ['recordId', 'birthDate'] as const) {
      if (!has(f)) ctx.addIssue({ code: 'custom', path: ['columns', f], message: `columns.${f} is required` });
    }
    if (has('identifier')) {
      ctx.addIssue({
        code: 'custom',
        path: ['columns', 'identifier'],
        message: 'an identifier column needs its system: use identifiers: [{ columns: [...], system: "...", kind: ssn | ssn-last4 | generic }]',
      });
    }
    p.identifiers.forEach((id, i) => {
      if (Array.isArray(id.columns)) return;
      const other = positions.get(id.columns.column);
      if (other) ctx.addIssue({ code: 'custom', path: ['identifiers', i, 'columns'], message: `column ${id.columns.column} is already columns.${other}` });
    });
    if (has('action') && p.group.mode !== 'append') {
      ctx.addIssue({
        code: 'custom',
        path: ['columns', 'action'],
        message:
          p.group.mode === 'replace'
            ? 'an action column needs group.mode: append (a replace file is the whole Group: whoever is not in it leaves, so no row can also ask to)'
            : 'an action column needs group.mode: append (in a remove file every row is a removal)',
      });
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

/**
 * An HL7 v2 pipeline: the feed's settings, a Group that only grows (seed 001: V2 never removes
 * anyone), and none of a roster's column or date settings (PID fixes them).
 */
function refineHl7v2(p: Pipeline, ctx: z.RefinementCtx): void {
  if (!p.hl7v2) ctx.addIssue({ code: 'custom', path: ['hl7v2'], message: 'format: hl7v2 needs hl7v2: { sendingFacility, vxu: add | ignore, qbp: add | ignore }' });
  if (p.group.mode !== 'append') ctx.addIssue({ code: 'custom', path: ['group', 'mode'], message: 'an HL7 v2 feed only adds people: use group.mode: append' });
  if (Object.keys(p.columns).length > 0) ctx.addIssue({ code: 'custom', path: ['columns'], message: 'an HL7 v2 pipeline has no columns: PID says where each field is' });
  if (p.identifier || p.identifiers.length > 0) ctx.addIssue({ code: 'custom', path: [p.identifier ? 'identifier' : 'identifiers'], message: 'for HL7 v2, say which PID-3 identifiers to match under hl7v2.recordId and hl7v2.identifiers' });
}

/**
 * Whether the pipeline's rows each say what they ask of the Group (a `remove` file, or an append
 * file with an action column): their rows carry an action, and their result files and summaries
 * say what each row did to the Group.
 */
export function hasRowActions(p: Pick<Pipeline, 'group' | 'columns'>): boolean {
  return p.group.mode === 'remove' || p.columns.action !== undefined;
}

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
