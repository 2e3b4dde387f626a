import { type DocumentNode, type GraphQLSchema, NoSchemaIntrospectionCustomRule, validate } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { Context } from '../graphql/context.js';
import { forbidden, unauthenticated } from '../shared/errors.js';

/**
 * Introspection (`__schema`, `__type`) per role, on HTTP and WebSocket alike: checked when the
 * operation executes, where both transports' context carries the viewer. Viewers of an allowed
 * role pay a Set lookup; for others, whether a document introspects is computed once per parsed
 * document (yoga caches documents) and remembered. `undefined` when everyone may introspect.
 */
export function introspectionPolicy(policy: Config['introspection']): Plugin | undefined {
  if (policy === 'all') return undefined;
  const roles = new Set<string>(policy);
  const introspects = new WeakMap<DocumentNode, boolean>();
  const uses = (schema: GraphQLSchema, doc: DocumentNode) => {
    let v = introspects.get(doc);
    if (v === undefined) {
      v = validate(schema, doc, [NoSchemaIntrospectionCustomRule]).length > 0;
      introspects.set(doc, v);
    }
    return v;
  };
  const allowed = roles.size === 0 ? '' : ` It is available to ${[...roles].join(', ')} tokens only.`;
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      const viewer = (args.contextValue as unknown as Context).viewer;
      if (viewer && roles.has(viewer.role)) return;
      if (!uses(args.schema, args.document)) return;
      const error =
        roles.size === 0
          ? forbidden('Introspection is disabled on this server (INTROSPECTION).')
          : viewer
            ? forbidden(`Introspection is not available to your role.${allowed}`)
            : unauthenticated(`Introspection requires a token.${allowed}`);
      setResultAndStopExecution({ errors: [error] });
    },
  };
}
