import { type GraphQLField, type GraphQLFieldResolver, type GraphQLSchema, defaultFieldResolver } from 'graphql';
import { policyOf } from './policy.js';
import type { AuditContext, AuditService } from './service.js';

/** The part of the GraphQL context the root-field wrapper reads: the instance's audit service. */
type Ctx = AuditContext & { services: { audit: Pick<AuditService, 'enabled' | 'field'> } };

const instrumented = new WeakSet<GraphQLSchema>();

const isPromise = (v: unknown): v is Promise<unknown> => !!v && typeof (v as { then?: unknown }).then === 'function';

/**
 * Wraps every audited Query and Mutation root field's resolver (once per schema; the schema is
 * shared by the instances of a process, so the wrapper finds the instance's audit service in the
 * context). After the resolver settles it records the field, its argument and result ids and the
 * outcome through the buffered writer: no I/O on the request path. Both transports execute
 * through this schema, so HTTP and WebSocket operations are covered alike. Subscriptions are
 * recorded by the WebSocket protocol (start and stop), not here.
 */
export function instrumentRootFields(schema: GraphQLSchema): GraphQLSchema {
  if (instrumented.has(schema)) return schema;
  instrumented.add(schema);
  for (const type of [schema.getQueryType(), schema.getMutationType()]) {
    if (!type) continue;
    for (const field of Object.values(type.getFields())) wrap(field as GraphQLField<unknown, Ctx>);
  }
  return schema;
}

function wrap(field: GraphQLField<unknown, Ctx>) {
  const policy = policyOf(field);
  if (!policy) return;
  const resolve: GraphQLFieldResolver<unknown, Ctx> = field.resolve ?? defaultFieldResolver;
  field.resolve = (source, args: Record<string, unknown>, ctx, info) => {
    const audit = ctx.services.audit;
    if (!audit.enabled) return resolve(source, args, ctx, info);
    let out: unknown;
    try {
      out = resolve(source, args, ctx, info);
    } catch (err) {
      audit.field(ctx, info, policy, args, err, true);
      throw err;
    }
    if (!isPromise(out)) {
      audit.field(ctx, info, policy, args, out, false);
      return out;
    }
    return out.then(
      (v) => {
        audit.field(ctx, info, policy, args, v, false);
        return v;
      },
      (err: unknown) => {
        audit.field(ctx, info, policy, args, err, true);
        throw err;
      },
    );
  };
}
