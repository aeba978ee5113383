/** Discovery: the CapabilityStatement at [base]/metadata and the SMART configuration. */
import { SIGNING_ALGS } from './auth.ts';
import { PIXM_PATIENT_PROFILE } from './patient-feed.ts';
import { SUPPORTED_SCOPES } from './scopes.ts';

export const BULK_DATA_SERVER = 'http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data';
export const GROUP_EXPORT = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export';

export function capabilityStatement(base: string, o: { version: string; date: string }) {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: o.date,
    publisher: 'rostermatch',
    kind: 'instance',
    instantiates: [BULK_DATA_SERVER],
    software: { name: 'rostermatch', version: o.version },
    implementation: { description: 'rostermatch: partner Groups of an immunization information system, for Bulk Data export', url: base },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        security: {
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: `${base}/auth/token` }],
            },
          ],
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          description: 'SMART Backend Services: private_key_jwt client assertions (RS384, ES384), system scopes',
        },
        resource: [
          {
            type: 'Group',
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            searchParam: [
              { name: 'identifier', type: 'token' },
              { name: 'name', type: 'string' },
            ],
            operation: [
              { name: 'export', definition: GROUP_EXPORT },
              // For clients registered with system/Group.write (or .u): partners that manage their own Group.
              { name: 'member-add', definition: 'http://hl7.org/fhir/us/davinci-atr/OperationDefinition/member-add' },
              { name: 'member-remove', definition: 'http://hl7.org/fhir/us/davinci-atr/OperationDefinition/member-remove' },
            ],
          },
          {
            // IHE PIXm ITI-104, the Patient Identity Feed: a Patient Identity Source adds, revises,
            // merges (replaced-by) and removes Patients by their identifier in its own domain, and
            // reads them back (the Location of a create).
            // Not IHE.PIXm.Manager as a whole: the PIX query (ITI-83, $ihe-pix) is not served.
            type: 'Patient',
            supportedProfile: [PIXM_PATIENT_PROFILE],
            documentation:
              'IHE PIXm Patient Identity Feed FHIR [ITI-104]: PUT [base]/Patient?identifier=system|value (add, revise, merge by replaced-by link, unmerge) and DELETE [base]/Patient?identifier=system|value (Remove Patient option), bodies and answers in application/fhir+json or application/fhir+xml. For clients registered as the Patient Identity Source of the identifier domain, with scope system/Patient.write (or .cud, .cu, .d) or ITI-104. GET [base]/Patient/[id] reads a Patient: any the index holds for a Patient Identity Source (merged-away ones as stored; 410 for a removed one), only the current members of its own Groups for a partner (system/Patient.read, .r or .rs; any other id is 404).',
            interaction: [
              { code: 'read', documentation: 'the stored Patient: any for a Patient Identity Source; for a partner, a current member of one of its Groups only' },
              { code: 'update', documentation: 'conditional update on identifier for ITI-104: add, revise, merge, unmerge' },
              { code: 'delete', documentation: 'conditional delete on identifier for ITI-104 (Remove Patient option)' },
            ],
            versioning: 'no-version',
            readHistory: false,
            updateCreate: true,
            conditionalCreate: false,
            conditionalUpdate: true,
            conditionalDelete: 'single',
          },
          { type: 'Immunization' },
        ],
      },
    ],
  };
}

export function smartConfiguration(base: string) {
  return {
    token_endpoint: `${base}/auth/token`,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...SIGNING_ALGS],
    grant_types_supported: ['client_credentials'],
    scopes_supported: [...SUPPORTED_SCOPES],
    capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
  };
}
