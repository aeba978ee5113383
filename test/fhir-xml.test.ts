/**
 * FHIR XML ⇄ JSON for the identity feed's Patients (PIXm) and OperationOutcomes: the JSON a FHIR
 * client would have sent for the same resource, arrays where FHIR says an element repeats,
 * booleans and numbers typed, a primitive's extensions under `_name`, the narrative kept as XHTML,
 * and a DOCTYPE or anything not well-formed refused.
 */
import { describe, expect, it } from 'vitest';
import { FhirXmlError, fhirJsonToXml, fhirXmlToJson } from '../src/fhir/xml.ts';

const MAIDEN_ALICE = `<?xml version="1.0" encoding="UTF-8"?>
<!-- PIXm's Resolve Duplicate Patient example, as FHIR XML -->
<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir ../../schema/patient.xsd">
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Maiden &amp; <b>Alice</b></p></div></text>
  <extension url="http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"><valueString value="O&apos;Brien"/></extension>
  <identifier><system value="urn:oid:1.3.6.1.4.1.21367.13.20.1000"/><value value="IHERED-m94"/></identifier>
  <active value="false"/>
  <name><family value="MOHR"/><given value="MAIDEN"/></name>
  <telecom><system value="phone"/><value value="555-0100"/><rank value="1"/></telecom>
  <gender value="female"/>
  <birthDate id="bd" value="1958-01-30"><extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime"><valueDateTime value="1958-01-30T09:30:00-05:00"/></extension></birthDate>
  <address><line value="1 Main St"/><line value="Apt 2"/><city value="Springfield"/><postalCode value="61761"/></address>
  <maritalStatus><coding><system value="http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"/><code value="M"/></coding></maritalStatus>
  <multipleBirthInteger value="2"/>
  <managingOrganization><reference value="Organization/1"/></managingOrganization>
  <link><other><identifier><system value="urn:oid:1.3.6.1.4.1.21367.13.20.1000"/><value value="IHERED-994"/></identifier></other><type value="replaced-by"/></link>
</Patient>`;

describe('FHIR XML', () => {
  it('reads a PIXm Patient as the JSON a client would have sent', () => {
    expect(fhirXmlToJson(MAIDEN_ALICE)).toEqual({
      resourceType: 'Patient',
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Maiden &amp; <b>Alice</b></p></div>' },
      extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName', valueString: "O'Brien" }],
      identifier: [{ system: 'urn:oid:1.3.6.1.4.1.21367.13.20.1000', value: 'IHERED-m94' }],
      active: false,
      name: [{ family: 'MOHR', given: ['MAIDEN'] }],
      telecom: [{ system: 'phone', value: '555-0100', rank: 1 }],
      gender: 'female',
      birthDate: '1958-01-30',
      _birthDate: { id: 'bd', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1958-01-30T09:30:00-05:00' }] },
      address: [{ line: ['1 Main St', 'Apt 2'], city: 'Springfield', postalCode: '61761' }],
      maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] },
      multipleBirthInteger: 2,
      managingOrganization: { reference: 'Organization/1' },
      // A Reference's identifier is one, not a list; Patient.link repeats.
      link: [{ other: { identifier: { system: 'urn:oid:1.3.6.1.4.1.21367.13.20.1000', value: 'IHERED-994' } }, type: 'replaced-by' }],
    });
  });

  it('keeps a repeated primitive\'s extensions beside its values, nulls where one has none', () => {
    const p = fhirXmlToJson(`<Patient xmlns="http://hl7.org/fhir"><name><given value="ANNA"/><given><extension url="http://x/e"><valueBoolean value="true"/></extension></given></name><multipleBirthBoolean value="true"/></Patient>`);
    expect(p).toEqual({ resourceType: 'Patient', name: [{ given: ['ANNA', null], _given: [null, { extension: [{ url: 'http://x/e', valueBoolean: true }] }] }], multipleBirthBoolean: true });
  });

  it('writes JSON back as FHIR XML that reads as the same JSON', () => {
    const json = fhirXmlToJson(MAIDEN_ALICE);
    const xml = fhirJsonToXml(json);
    expect(xml).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Patient xmlns="http:\/\/hl7\.org\/fhir"><text><status value="generated"\/><div xmlns="http:\/\/www\.w3\.org\/1999\/xhtml">/);
    expect(xml).toContain('<extension url="http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"><valueString value="O\'Brien"/></extension>');
    expect(fhirXmlToJson(xml)).toEqual(json);
    const oo = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'a <b> & "c"' }] };
    expect(fhirJsonToXml(oo)).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<OperationOutcome xmlns="http://hl7.org/fhir"><issue><severity value="error"/><code value="invalid"/><diagnostics value="a &lt;b&gt; &amp; &quot;c&quot;"/></issue></OperationOutcome>');
    expect(fhirXmlToJson(fhirJsonToXml(oo))).toEqual(oo);
  });

  it.each([
    ['a DOCTYPE (entity expansion, external entities)', '<!DOCTYPE Patient [<!ENTITY x "y">]><Patient xmlns="http://hl7.org/fhir"/>', /DOCTYPE/],
    ['an unknown entity', '<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>', /unknown entity/],
    ['a mismatched end tag', '<Patient xmlns="http://hl7.org/fhir"><name></Patient>', /closes/],
    ['no FHIR namespace', '<Patient><gender value="female"/></Patient>', /FHIR namespace/],
    ['text where a value attribute belongs', '<Patient xmlns="http://hl7.org/fhir"><gender>female</gender></Patient>', /holds text/],
    ['a boolean that is not one', '<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>', /Patient\.active must be true or false/],
    ['content after the root', '<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>', /after the root/],
    ['JSON', '{"resourceType":"Patient"}', /no root element/],
  ])('refuses %s', (_what, xml, message) => {
    expect(() => fhirXmlToJson(xml)).toThrow(FhirXmlError);
    expect(() => fhirXmlToJson(xml)).toThrow(message);
  });
});
