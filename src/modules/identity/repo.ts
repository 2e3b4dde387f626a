import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { orgs, users, type UserRow } from './tables.js';

/** Creates the org and user if missing; refreshes role and name when the token says otherwise. */
export async function upsertUser(
  db: Executor,
  u: { id: string; orgId: string; role: UserRow['role']; name: string },
): Promise<UserRow | undefined> {
  // the common case (a known user reconnecting) is one read and no write: a reconnect storm
  // after an instance restart must not turn into thousands of WAL writes
  const [known] = await db.select().from(users).where(eq(users.id, u.id));
  if (known && (known.orgId !== u.orgId || (known.role === u.role && known.name === u.name))) return known;
  await db.insert(orgs).values({ id: u.orgId, name: u.orgId }).onConflictDoNothing();
  const [row] = await db
    .insert(users)
    .values(u)
    .onConflictDoUpdate({
      target: users.id,
      set: { role: u.role, name: u.name },
      setWhere: sql`${users.orgId} = ${u.orgId}`,
    })
    .returning();
  return row;
}

/**
 * Users with these ids, whatever their organisation: provisioning must see a `sub` registered in
 * another organisation to refuse it (see {@link upsertUser}).
 */
export async function findUsersAnyOrg(db: Executor, ids: readonly string[]): Promise<UserRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(users)
    .where(inArray(users.id, [...ids]));
}

export async function findUsers(db: Executor, orgId: string, ids: readonly string[]): Promise<UserRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(users)
    .where(and(eq(users.orgId, orgId), inArray(users.id, [...ids])));
}

/** Users of the organisation with this role, by id (e.g. the admins an escalation notifies). */
export async function findUsersByRole(db: Executor, orgId: string, role: UserRow['role']): Promise<UserRow[]> {
  return db
    .select()
    .from(users)
    .where(and(eq(users.orgId, orgId), eq(users.role, role)))
    .orderBy(users.id);
}

export async function createOrg(db: Executor, id: string, name: string): Promise<void> {
  await db.insert(orgs).values({ id, name }).onConflictDoUpdate({ target: orgs.id, set: { name } });
}

export async function countOrgs(db: Executor): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(orgs);
  return row?.n ?? 0;
}
