import type { Executor } from '../../db/client.js';
import { forbidden } from '../../shared/errors.js';
import { groupCommit } from '../../shared/group-commit.js';
import type { Viewer } from '../../shared/viewer.js';
import * as repo from './repo.js';
import type { UserRow } from './tables.js';

export interface IdentityService {
  /**
   * Provisions the viewer's org and user just in time (cached per instance). A `sub` already
   * registered in another organisation is refused.
   */
  ensureViewer(viewer: Viewer): Promise<void>;
  /** Users of the viewer's organisation with these ids (unknown or foreign ids are omitted). */
  usersById(viewer: Viewer, ids: readonly string[]): Promise<UserRow[]>;
  /** Users of the viewer's organisation with this role (e.g. the admins an escalation notifies). */
  usersByRole(viewer: Viewer, role: UserRow['role']): Promise<UserRow[]>;
  createOrg(id: string, name: string): Promise<void>;
  upsertUser(u: { id: string; orgId: string; role: UserRow['role']; name: string }): Promise<void>;
  isEmpty(): Promise<boolean>;
}

export function createIdentityService(deps: { db: Executor }): IdentityService {
  const { db } = deps;
  const known = new Map<string, string>();
  // users first seen together (a reconnect storm after an instance restart) are read in one
  // statement; only a new or changed user is written, one by one as before
  const lookup = groupCommit(
    async (ids: string[]) => {
      const rows = new Map((await repo.findUsersAnyOrg(db, ids)).map((r) => [r.id, r]));
      return ids.map((id) => rows.get(id));
    },
    { max: 500, parallel: 2 },
  );
  return {
    async ensureViewer(viewer) {
      if (viewer.role === 'system') return;
      const key = `${viewer.orgId}\0${viewer.role}\0${viewer.name}`;
      if (known.get(viewer.userId) === key) return;
      const found = await lookup(viewer.userId);
      const row =
        found && (found.orgId !== viewer.orgId || (found.role === viewer.role && found.name === viewer.name))
          ? found
          : await repo.upsertUser(db, { id: viewer.userId, orgId: viewer.orgId, role: viewer.role, name: viewer.name });
      if (!row || row.orgId !== viewer.orgId) throw forbidden('This account belongs to another organisation.');
      if (known.size > 50_000) known.clear();
      known.set(viewer.userId, key);
    },
    usersById: (viewer, ids) => repo.findUsers(db, viewer.orgId, ids),
    usersByRole: (viewer, role) => repo.findUsersByRole(db, viewer.orgId, role),
    createOrg: (id, name) => repo.createOrg(db, id, name),
    async upsertUser(u) {
      await repo.upsertUser(db, u);
    },
    isEmpty: async () => (await repo.countOrgs(db)) === 0,
  };
}
