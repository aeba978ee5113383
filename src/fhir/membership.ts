/**
 * Da Vinci ATR-style membership operations for partners that manage their own Group (the
 * dynamic approach): `POST [base]/Group/[id]/$member-add` and `$member-remove`, a Parameters
 * body naming the person by `patientReference` (the FHIR Patient id the IIS handed back, in a
 * result file or an RSP) or `memberId` (an identifier the IIS index holds, e.g. an SSN or
 * Medicaid number), with an optional `attributionPeriod` on add. ATR's provider parameters
 * (`providerNpi`, `providerReference`) are accepted and not kept: an IIS Group attributes people
 * to the partner, not to a provider within it.
 */
import { FhirError } from './outcome.ts';

export interface MemberOperation {
  patientId?: string;
  memberId?: { system: string; value: string };
  period?: { start?: string; end?: string };
}

const PERIOD_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

export function parseMemberOperation(body: unknown, op: 'add' | 'remove'): MemberOperation {
  const invalid = (m: string) => new FhirError(400, 'invalid', m);
  const b = body as { resourceType?: unknown; parameter?: unknown } | undefined;
  if (!b || typeof b !== 'object' || b.resourceType !== 'Parameters' || !Array.isArray(b.parameter)) throw invalid('the body must be a FHIR Parameters resource with parameters');
  const out: MemberOperation = {};
  for (const [i, p] of (b.parameter as Record<string, unknown>[]).entries()) {
    const at = `Parameters.parameter[${i}]`;
    switch (p?.name) {
      case 'patientReference': {
        const ref = (p.valueReference as { reference?: unknown } | undefined)?.reference;
        const m = typeof ref === 'string' ? /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(ref) : null;
        if (!m) throw invalid(`${at} (patientReference) must be a valueReference to Patient/<id>`);
        if (out.patientId !== undefined) throw invalid('patientReference is given more than once');
        out.patientId = m[1]!;
        break;
      }
      case 'memberId': {
        const id = p.valueIdentifier as { system?: unknown; value?: unknown } | undefined;
        if (typeof id?.system !== 'string' || typeof id.value !== 'string' || id.system === '' || id.value === '') throw invalid(`${at} (memberId) must be a valueIdentifier with a system and a value`);
        if (out.memberId !== undefined) throw invalid('memberId is given more than once');
        out.memberId = { system: id.system, value: id.value };
        break;
      }
      case 'attributionPeriod': {
        if (op === 'remove') throw invalid('attributionPeriod is a parameter of $member-add');
        const per = p.valuePeriod as { start?: unknown; end?: unknown } | undefined;
        const ok = (v: unknown) => v === undefined || (typeof v === 'string' && PERIOD_INSTANT.test(v) && !Number.isNaN(Date.parse(v)));
        if (!per || typeof per !== 'object' || !ok(per.start) || !ok(per.end) || (per.start === undefined && per.end === undefined)) {
          throw invalid(`${at} (attributionPeriod) must be a valuePeriod with a start and/or end date or dateTime`);
        }
        if (typeof per.start === 'string' && typeof per.end === 'string' && Date.parse(per.end) < Date.parse(per.start)) throw invalid('attributionPeriod ends before it starts');
        out.period = { ...(typeof per.start === 'string' ? { start: new Date(per.start).toISOString() } : {}), ...(typeof per.end === 'string' ? { end: new Date(per.end).toISOString() } : {}) };
        break;
      }
      case 'providerNpi':
      case 'providerReference':
      case 'coverageReference':
        break;
      default:
        throw new FhirError(400, 'not-supported', `${at}: parameter ${String(p?.name)} is not one of $member-${op}'s`);
    }
  }
  if ((out.patientId === undefined) === (out.memberId === undefined)) throw new FhirError(400, 'required', 'name the person with exactly one of patientReference or memberId');
  return out;
}
