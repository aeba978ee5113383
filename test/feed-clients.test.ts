/**
 * Who may feed the index: the identity feed's scopes (SMART v1 and v2, IHE IUA's ITI-104) belong
 * to Patient Identity Sources only, each registered for its identifier domains, one source per
 * domain; a partner's client never holds them.
 */
import { describe, expect, it } from 'vitest';
import { checkDomain, checkFeedScopes, checkScopes } from '../src/cli/client.ts';
import { accessOf, grantScopes, isFeedScope, parseScope } from '../src/fhir/scopes.ts';
import { addClient, FEED_PARTNER, getClient } from '../src/store/index.ts';
import { tempDb } from './helpers.ts';

const RED = 'urn:oid:1.3.6.1.4.1.21367.13.20.1000';
const JWKS = { keys: [{ kty: 'EC', crv: 'P-384', x: 'x', y: 'y', kid: 'k' }] };

describe('the identity feed\'s scopes', () => {
  it('reads system/Patient.write, its v2 letters and ITI-104 as creating, updating and deleting Patients — nothing else', () => {
    expect(parseScope('system/Patient.write')).toEqual({ types: ['Patient'], permissions: ['c', 'u', 'd'] });
    expect(parseScope('system/Patient.cu')).toEqual({ types: ['Patient'], permissions: ['c', 'u'] });
    expect(parseScope('ITI-104')).toEqual({ types: ['Patient'], permissions: ['c', 'u', 'd'] });
    expect(parseScope('system/Group.write')).toEqual({ types: ['Group'], permissions: ['u'] });
    for (const s of ['system/*.write', 'system/*.cud', 'system/Group.c', 'system/Group.d', 'system/Immunization.u']) expect(parseScope(s), s).toBeUndefined();
    expect(['system/Patient.write', 'system/Patient.d', 'ITI-104'].every(isFeedScope)).toBe(true);
    expect(['system/Patient.read', 'system/*.read', 'system/Group.write'].some(isFeedScope)).toBe(false);
    expect([...accessOf(['system/*.read', 'system/Group.write']).Patient]).toEqual(['r', 's']);
    // A source registered with .write may ask for a part of it; one registered to read may not write.
    expect(grantScopes('system/Patient.cu system/Patient.d', ['system/Patient.write'])).toEqual(['system/Patient.cu', 'system/Patient.d']);
    expect(grantScopes('system/Patient.write ITI-104', ['system/*.read'])).toEqual([]);
  });

  it('registers them for a source with domains only, and a source with nothing else', () => {
    expect(checkScopes('system/Patient.write ITI-104')).toBe('system/Patient.write ITI-104');
    expect(() => checkFeedScopes('system/Patient.write', false)).toThrow(/for a Patient Identity Source: register it with --domain/);
    expect(() => checkFeedScopes('system/Patient.write system/*.read', true)).toThrow(/holds the feed's scopes only/);
    expect(() => checkFeedScopes('system/*.read', false)).not.toThrow();
    expect(checkDomain(RED)).toBe(RED);
    for (const bad of ['IHERED', 'urn:oid:1.2|3', 'http://a b']) expect(() => checkDomain(bad), bad).toThrow(/not an identifier system/);
  });

  it('keeps one Patient Identity Source per domain, and a source acts for no partner', async () => {
    const { db } = await tempDb();
    await addClient(db, { id: 'red', partner: FEED_PARTNER, domains: [RED, RED], jwks: JWKS, scopes: 'system/Patient.write', by: 't' });
    expect((await getClient(db, 'red'))!.domains).toEqual([RED]);
    await expect(addClient(db, { id: 'red-2', partner: FEED_PARTNER, domains: ['urn:oid:2.3', RED], jwks: JWKS, scopes: 'ITI-104', by: 't' })).rejects.toThrow(`domain "${RED}" is fed by client "red" already`);
    await expect(addClient(db, { id: 'p', partner: 'school-district-7', domains: ['urn:oid:9'], jwks: JWKS, scopes: 'ITI-104', by: 't' })).rejects.toThrow(/acts for no partner/);
    await expect(addClient(db, { id: 'q', partner: FEED_PARTNER, jwks: JWKS, scopes: 'ITI-104', by: 't' })).rejects.toThrow(/at least one domain/);
    expect((await getClient(db, 'red'))!.partner).toBe(FEED_PARTNER);
  });
});
