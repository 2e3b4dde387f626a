import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';

/** The minimal user shape every module can expose. */
export interface UserShape {
  id: string;
  name: string;
  role: string;
}

export const Role = builder.enumType('Role', {
  description: 'What a user is to the organisation; decides what they may see and do.',
  values: {
    PATIENT: { value: 'patient', description: 'A patient: sees their own data and the conversations they belong to.' },
    PROVIDER: { value: 'provider', description: 'A clinician or carer.' },
    ADMIN: { value: 'admin', description: 'Manages the organisation.' },
    SERVICE: { value: 'service', description: 'A machine account acting for the organisation.' },
    SYSTEM: { value: 'system', description: 'Wardline itself (background work).' },
  } as const,
});

export const User = builder.objectRef<UserShape>('User').implement({
  description: 'A person or service account of an organisation.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable id (the `sub` claim of their token).' }),
    name: t.exposeString('name', { description: 'Display name.' }),
    role: t.field({ type: Role, description: 'Role in the organisation.', resolve: (u) => u.role as 'patient' }),
  }),
});

builder.queryField('me', (t) =>
  t.field({
    type: User,
    description: 'The authenticated user.',
    resolve: (_root, _args, ctx) => {
      const v = requireViewer(ctx);
      return { id: v.userId, name: v.name, role: v.role };
    },
  }),
);
