import { badInput, forbidden, notFound } from '../shared/errors.js';
import { builder } from './builder.js';
import { requireViewer } from './context.js';

builder.mutationField('refreshConnectionToken', (t) =>
  t.field({
    type: 'DateTime',
    description:
      'Hands a fresh token to the open WebSocket connection this mutation is sent on, before the current one expires: ' +
      "subscriptions keep running and the connection now closes (4403) at the new token's expiry. The token must be " +
      'valid and for the same user, organisation and role (else FORBIDDEN and nothing changes). WebSocket only. ' +
      'Returns the new expiry.',
    args: { token: t.arg.string({ required: true, description: 'The new bearer token (with or without the `Bearer ` prefix).' }) },
    resolve: async (_root, { token }, ctx) => {
      requireViewer(ctx);
      if (!ctx.connection)
        throw badInput(
          'refreshConnectionToken refreshes a WebSocket connection: send it over graphql-ws; over HTTP, send the new token with the next request.',
        );
      const viewer = await ctx.connection.refreshToken(token);
      return new Date((viewer.exp ?? 0) * 1000);
    },
  }),
);

builder.mutationField('revokeUserSessions', (t) =>
  t.field({
    type: 'DateTime',
    description:
      'Signs a user of your organisation out everywhere (admins only): their open WebSocket connections on every ' +
      'instance close with 4403, and tokens issued before the returned instant are refused from now on ' +
      '(for SESSION_REVOCATION_TTL_SECONDS); the user needs a token issued at or after it. Returns that instant.',
    args: { userId: t.arg.id({ required: true, description: 'The user whose sessions end.' }) },
    resolve: async (_root, { userId }, ctx) => {
      const viewer = requireViewer(ctx);
      if (viewer.role !== 'admin') throw forbidden('Only an admin of the organisation can revoke sessions.');
      const id = String(userId);
      if ((await ctx.services.identity.usersById(viewer, [id])).length === 0) throw notFound('User');
      if (!ctx.revocations) throw badInput('Session revocation is served by API instances only.');
      return ctx.revocations.revoke(viewer.orgId, id);
    },
  }),
);
