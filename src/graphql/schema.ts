import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './stream-event.js';
import './sessions-schema.js';
import '../modules/identity/schema.js';
import '../modules/alerts/schema.js';
import '../modules/calls/schema.js';
import '../modules/messaging/schema.js';
import '../modules/notifications/schema.js';
import '../modules/presence/schema.js';
import '../modules/reminders/schema.js';
import '../modules/predictions/schema.js';
import '../modules/predictions/risk-schema.js';
import '../modules/audit/schema.js';
import { instrumentRootFields } from '../modules/audit/capture.js';

builder.queryType({ description: 'Read operations.' });
builder.mutationType({ description: 'Write operations. Creating mutations accept a client key for safe retries.' });
builder.subscriptionType({
  description: 'Live streams over graphql-ws at /graphql. Durable streams resume with `after`.',
});

let built: GraphQLSchema | undefined;
/**
 * The schema, built once per process (the builder is append-only), sorted for stable printing;
 * its audited root fields record into the audit log of the instance that executes them.
 */
export function buildSchema(): GraphQLSchema {
  built ??= instrumentRootFields(lexicographicSortSchema(builder.toSchema()));
  return built;
}
