/** The system of record: PGlite embedded, or a PostgreSQL server; one schema, one dialect. */
export { isDb, openEmbedded, openPostgres, openStore, sqlLiteral, type Db, type Queryable } from './db.ts';
export * from './patients.ts';
export * from './groups.ts';
export * from './runs.ts';
export * from './review.ts';
export * from './models.ts';
export * from './audit.ts';
export * from './sessions.ts';
export * from './views.ts';
export * from './clients.ts';
export * from './bulk.ts';
export * from './clock.ts';
export * from './partner-membership.ts';
export * from './characteristic-groups.ts';
export * from './records.ts';
export * from './identity-feed.ts';
