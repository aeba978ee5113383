/**
 * The FHIR surface partners' systems use: discovery, SMART Backend Services tokens, their Groups,
 * and Group-level Bulk Data `$export` — and the IIS's own Patient Identity Sources use, for the
 * IHE PIXm identity feed (ITI-104). An adapter over the store and the export stage; it holds no
 * matching logic.
 */
import type { FastifyInstance } from 'fastify';
import { smartConfiguration } from './capability.ts';

export { fhirRoutes, type FhirOptions } from './routes.ts';
export { FEED_SCOPES, SUPPORTED_SCOPES } from './scopes.ts';
export { feedAuditBundle, feedAuditEvent } from './audit-event.ts';

/** The SMART configuration at the origin's root as well as under the FHIR base: widely used clients look there. */
export function smartConfigurationRoute(app: FastifyInstance, base: () => string): void {
  app.get('/.well-known/smart-configuration', async (_req, reply) => reply.header('cache-control', 'no-store').send(smartConfiguration(base())));
}
