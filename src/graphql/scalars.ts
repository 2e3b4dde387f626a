import { GraphQLError, Kind } from 'graphql';
import { builder } from './builder.js';

builder.scalarType('DateTime', {
  description: 'An instant in time, as an ISO 8601 string in UTC (e.g. 2026-11-23T08:00:00.000Z).',
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString()),
  parseValue: (v) => {
    const d = typeof v === 'string' ? new Date(v) : undefined;
    if (!d || Number.isNaN(d.getTime()))
      throw new GraphQLError('DateTime must be an ISO 8601 string.', { extensions: { code: 'BAD_USER_INPUT' } });
    return d;
  },
  parseLiteral: (ast) => {
    const d = ast.kind === Kind.STRING ? new Date(ast.value) : undefined;
    if (!d || Number.isNaN(d.getTime()))
      throw new GraphQLError('DateTime must be an ISO 8601 string.', { extensions: { code: 'BAD_USER_INPUT' } });
    return d;
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value (object, array, string, number, boolean or null).',
  serialize: (v) => v,
  parseValue: (v) => v,
});
