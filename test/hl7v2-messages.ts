/** HL7 v2 messages and an hl7v2 pipeline for hand-written tests (the facility TESTCLINIC, the people of fixtures.ts). */

export const FACILITY = 'TESTCLINIC';

/** An hl7v2 pipeline for the test clinic: SSNs in PID-3 matched, VXU adds, QBP does not (unless told). */
export function v2PipelineSpec(groupId: string, policy: { vxu: 'add' | 'ignore'; qbp: 'add' | 'ignore' } = { vxu: 'add', qbp: 'ignore' }, extra: Record<string, unknown> = {}) {
  return {
    partner: 'test-clinic',
    displayName: 'Test Clinic',
    format: 'hl7v2',
    hl7v2: { sendingFacility: FACILITY, ...policy, identifiers: [{ type: 'SS', system: 'http://hl7.org/fhir/sid/us-ssn', kind: 'ssn' }], ...extra },
    group: { id: groupId, name: 'Test Clinic patients', mode: 'append' },
  };
}

export const msh = (type: string, id: string, profile: string, facility = FACILITY) =>
  `MSH|^~\\&|TESTEHR|${facility}|IIS|IIS|20261207120000-0500||${type}|${id}|P|2.5.1|||ER|AL|||||${profile}^CDCPHINVS`;

/** A Z22 VXU: the PID given, one hepatitis B dose with its route and site. */
export const vxu = (id: string, pid: string, facility?: string) =>
  [
    msh('VXU^V04^VXU_V04', id, 'Z22', facility),
    pid,
    `ORC|RE||197023^TESTEHR|||||||||||||||||${FACILITY}`,
    'RXA|0|1|20261201||08^Hep B, adolescent or pediatric^CVX|0.5|mL^mL^UCUM||00^New immunization record^NIP001||||||LOT123||MSD^Merck^MVX|||CP|A',
    'RXR|C28161^Intramuscular^NCIT|LA^Left Arm^HL70163',
  ].join('\r');

/** A QBP Z34 (or Z44) whose QPD-3… are `qpd`; QPD-2, the query tag, is `<id>-Q`. */
export const qbp = (id: string, qpd: string, profile: 'Z34' | 'Z44' = 'Z34') =>
  [
    msh('QBP^Q11^QBP_Q11', id, profile),
    `QPD|${profile}^Request ${profile === 'Z34' ? 'Immunization History' : 'Evaluated History and Forecast'}^CDCPHINVS|${id}-Q|${qpd}`,
    'RCP|I|5^RD&Records&HL70126',
  ].join('\r');
