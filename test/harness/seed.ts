import { randomUUID } from 'node:crypto';
import { mintToken } from '../../src/http/auth.js';
import type { Role } from '../../src/shared/viewer.js';
import { TEST_JWT_SECRET } from './env.js';
import type { TestApp } from './start-app.js';

export interface SeededUser {
  id: string;
  name: string;
  role: Role;
  token: string;
}

export interface SeededOrg {
  orgId: string;
  patient: SeededUser;
  provider: SeededUser;
  admin: SeededUser;
  service: SeededUser;
  /** Adds another user of this org (provisioned in the database) with a token. */
  user(role: Role, name?: string): Promise<SeededUser>;
}

export const token = (u: { id: string; orgId: string; role: Role; name?: string }, ttlSeconds = 3600) =>
  mintToken(TEST_JWT_SECRET, { sub: u.id, org: u.orgId, role: u.role, name: u.name }, ttlSeconds);

/** A new organisation with one user of each role, unique to the calling test. */
export async function seedOrg(app: TestApp): Promise<SeededOrg> {
  const orgId = `org-${randomUUID()}`;
  const identity = app.container.services.identity;
  await identity.createOrg(orgId, 'Test org');
  const user = async (role: Role, name = `${role}-${randomUUID().slice(0, 6)}`): Promise<SeededUser> => {
    const id = `${orgId}:${name}`;
    await identity.upsertUser({ id, orgId, role, name });
    return { id, name, role, token: `Bearer ${await token({ id, orgId, role, name })}` };
  };
  return {
    orgId,
    patient: await user('patient'),
    provider: await user('provider'),
    admin: await user('admin'),
    service: await user('service'),
    user,
  };
}
