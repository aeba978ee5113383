/**
 * The audit log's identity feed transactions as FHIR R4 AuditEvents, shaped per the IHE PIXm
 * manager-side audit profiles (IHE.PIXm.Feed.{Create,Update,Delete}.Audit.Manager, built on IHE
 * BALP's RESTful events): type `rest`, subtype the RESTful interaction and ITI-104, the action,
 * when it was recorded, the outcome, the Patient Identity Source's client and this server as
 * agents, this server as the source, and as entities the Patient (by identifier and id) and the
 * conditional request's query. What the row does not hold (the client's network address) is left
 * out rather than made up. Ids and identifiers only, as in the audit log itself.
 */
import type { AuditEvent } from '../store/index.ts';

const PIXM_SD = 'https://profiles.ihe.net/ITI/PIXm/StructureDefinition';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';

type Interaction = 'create' | 'update' | 'delete';

/** Each feed action of the audit log: the RESTful interaction, and the action code C, U or D. */
const FEED_ACTIONS: Record<string, Interaction> = {
  'feed.create': 'create',
  'feed.update': 'update',
  'feed.merge': 'update',
  'feed.unmerge': 'update',
  'feed.remove': 'delete',
  'feed.remove.absent': 'delete',
};

export const isFeedAction = (action: string) => action in FEED_ACTIONS || action === 'feed.refused';

/** The detail of a feed transaction's audit row: what the store and the refusals write, and the console shows. */
export interface FeedDetail {
  identifier?: { system?: string; value?: string };
  outcome?: string;
  patientId?: string;
  survivorId?: string;
  groups?: string[];
  reason?: string;
  method?: string;
  status?: number;
}

/** One audit row of the identity feed as a FHIR AuditEvent; undefined for any other row. */
export function feedAuditEvent(e: AuditEvent, o: { base: string }): Record<string, unknown> | undefined {
  if (!isFeedAction(e.action)) return undefined;
  const d = (e.detail ?? {}) as FeedDetail;
  const interaction: Interaction = FEED_ACTIONS[e.action] ?? (d.method === 'DELETE' ? 'delete' : 'update');
  const refused = e.action === 'feed.refused';
  const profile = { create: 'Create', update: 'Update', delete: 'Delete' }[interaction];
  const patientId = d.patientId ?? (/^Patient\/([^?/]+)$/.exec(e.entity)?.[1] || undefined);
  const client = e.actor.startsWith('client/') ? e.actor.slice('client/'.length) : e.actor;
  const identifier = d.identifier?.system !== undefined && d.identifier.value !== undefined ? { system: d.identifier.system, value: d.identifier.value } : undefined;
  const details = [
    ...(d.outcome ? [{ type: 'outcome', valueString: d.outcome }] : []),
    ...(d.survivorId ? [{ type: 'replaced-by', valueString: `Patient/${d.survivorId}` }] : []),
    ...(d.groups && d.groups.length > 0 ? [{ type: 'groups', valueString: d.groups.map((g) => `Group/${g}`).join(' ') }] : []),
    ...(d.reason ? [{ type: 'reason', valueString: d.reason }] : []),
  ];
  const query = identifier ? `identifier=${identifier.system}|${identifier.value}` : undefined;
  return {
    resourceType: 'AuditEvent',
    id: String(e.id),
    meta: { profile: [`${PIXM_SD}/IHE.PIXm.Feed.${profile}.Audit.Manager`] },
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' },
    subtype: [
      { system: 'http://hl7.org/fhir/restful-interaction', code: interaction, display: interaction },
      { system: 'urn:ihe:event-type-code', code: 'ITI-104', display: 'Patient Identity Feed FHIR' },
    ],
    action: { create: 'C', update: 'U', delete: 'D' }[interaction],
    recorded: e.at,
    // R4 audit-event-outcome: 0 success, 4 minor failure (the request was refused; nothing changed).
    outcome: refused ? '4' : '0',
    ...(refused ? { outcomeDesc: `HTTP ${d.status ?? 400}: ${d.reason ?? 'refused'}` } : e.action === 'feed.remove.absent' ? { outcomeDesc: 'no Patient held the identifier' } : {}),
    agent: [
      {
        type: { coding: [interaction === 'delete' ? { system: DCM, code: '110150', display: 'Application' } : { system: DCM, code: '110153', display: 'Source Role ID' }] },
        who: { identifier: { system: `${o.base}/auth/token`, value: client }, display: e.actor },
        requestor: true,
      },
      {
        type: {
          coding: [
            interaction === 'delete'
              ? { system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'custodian', display: 'Custodian' }
              : { system: DCM, code: '110152', display: 'Destination Role ID' },
          ],
        },
        who: { display: o.base },
        requestor: false,
        network: { address: o.base, type: '5' },
      },
    ],
    source: {
      site: 'rostermatch',
      observer: { display: o.base },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity: [
      ...(identifier || patientId
        ? [
            {
              what: { ...(patientId ? { reference: `Patient/${patientId}` } : {}), ...(identifier ? { identifier } : {}) },
              type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
              role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
              ...(details.length > 0 ? { detail: details } : {}),
            },
          ]
        : []),
      ...(patientId && !refused
        ? [{ what: { reference: `Patient/${patientId}` }, type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } }]
        : []),
      ...(query
        ? [
            {
              type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
              role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
              query: Buffer.from(query).toString('base64'),
            },
          ]
        : []),
    ],
  };
}

/** The feed's audit rows as a FHIR Bundle (collection) of AuditEvents, newest first. */
export function feedAuditBundle(events: readonly AuditEvent[], o: { base: string }): Record<string, unknown> {
  const entries = events.flatMap((e) => {
    const r = feedAuditEvent(e, o);
    return r ? [{ resource: r }] : [];
  });
  return { resourceType: 'Bundle', type: 'collection', timestamp: new Date().toISOString(), entry: entries };
}
