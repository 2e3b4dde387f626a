import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';
import type { AuditRow } from './tables.js';

const AuditOperationEnum = builder.enumType('AuditOperation', {
  description: 'What kind of access an audit event records.',
  values: {
    QUERY: { value: 'query', description: 'A read (a query root field).' },
    MUTATION: { value: 'mutation', description: 'A write (a mutation root field).' },
    SUBSCRIBE: { value: 'subscribe', description: 'A subscription started (or was refused: see `outcome`).' },
    UNSUBSCRIBE: { value: 'unsubscribe', description: 'A subscription stopped (client complete, socket closed, or ended by the server).' },
  } as const,
});

const AuditTransportEnum = builder.enumType('AuditTransport', {
  description: 'How the operation arrived.',
  values: {
    HTTP: { value: 'http', description: 'POST /graphql.' },
    WS: { value: 'ws', description: 'graphql-ws on /graphql.' },
  } as const,
});

const AuditEvent = builder.objectRef<AuditRow>('AuditEvent').implement({
  description:
    'One access to patient data: who (user, role, address, connection), what (operation, root field, object type and ids — never contents), when, and the outcome.',
  fields: (t) => ({
    id: t.id({ description: 'Event id (increasing in write order).', resolve: (r) => String(r.id) }),
    at: t.field({ type: 'DateTime', description: 'When the access happened.', resolve: (r) => r.at }),
    userId: t.exposeID('userId', { description: 'Who: the user id from the token.' }),
    role: t.exposeString('role', { description: 'The role the token carried (patient, provider, admin, service).' }),
    transport: t.field({ type: AuditTransportEnum, description: 'HTTP or WebSocket.', resolve: (r) => r.transport as 'http' | 'ws' }),
    ip: t.exposeString('ip', { nullable: true, description: 'Remote address of the connection (the proxy’s, behind one).' }),
    socketId: t.exposeString('socketId', { nullable: true, description: 'The graphql-ws connection (WebSocket only).' }),
    requestId: t.exposeString('requestId', { description: 'The operation’s request id (matches the server logs).' }),
    operation: t.field({ type: AuditOperationEnum, description: 'Read, write, subscribe or unsubscribe.', resolve: (r) => r.operation }),
    operationName: t.exposeString('operationName', { nullable: true, description: 'The operation name the client gave, if any.' }),
    field: t.exposeString('field', { description: 'The root field, e.g. `sendMessage`, `conversation`, `score`.' }),
    objectType: t.exposeString('objectType', { description: 'The kind of object accessed, e.g. `Message`, `Conversation`, `Prediction`.' }),
    objectIds: t.exposeStringList('objectIds', {
      description: 'Ids of the objects accessed, from the arguments and the result (at most 50).',
    }),
    outcome: t.exposeString('outcome', { description: '`ok`, or the error code the client got (`FORBIDDEN`, `NOT_FOUND`...).' }),
    detail: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Extras without content, e.g. `{ alias, from, to }` for a model promotion or `{ reason }` for an unsubscribe.',
      resolve: (r) => r.detail ?? null,
    }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  description: 'Narrows `auditEvents`; every given field must match.',
  fields: (t) => ({
    userId: t.id({ required: false, description: 'Only this user’s accesses.' }),
    objectType: t.string({ required: false, description: 'Only accesses to this kind of object, e.g. `Message`.' }),
    objectId: t.id({ required: false, description: 'Only accesses naming this object id.' }),
    operation: t.field({ type: AuditOperationEnum, required: false, description: 'Only this kind of access.' }),
    outcome: t.string({ required: false, description: '`ok`, or an error code such as `FORBIDDEN`.' }),
    from: t.field({ type: 'DateTime', required: false, description: 'At or after this time.' }),
    to: t.field({ type: 'DateTime', required: false, description: 'At or before this time.' }),
  }),
});

builder.queryFields((t) => ({
  auditEvents: t.connection(
    {
      type: AuditEvent,
      description:
        'The audit log of your organisation, newest first (admins only; others get FORBIDDEN). Pages forward only (`first`/`after`). Reading it is itself recorded (object type `AuditEvent`).',
      args: { filter: t.arg({ type: AuditEventFilter, required: false, description: 'What to show (default: everything).' }) },
      resolve: (_r, args, ctx) => ctx.services.audit.events(requireViewer(ctx), args.filter, args),
    },
    { name: 'AuditEventConnection', description: 'A page of audit events.' },
    { name: 'AuditEventEdge', description: 'An audit event and its cursor.' },
  ),
}));
