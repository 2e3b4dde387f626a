import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { StreamSpec } from '../../realtime/stream.js';
import type { Queues } from '../../jobs/queues.js';
import { scheduleAfterCommit } from '../../jobs/timer.js';
import type { Commit } from '../../realtime/commit.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { badInput, conflict, forbidden, notFound } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import { type PageArgs, forwardConnection, forwardPage, parseInput } from '../../shared/validation.js';
import { ROLES, type Viewer } from '../../shared/viewer.js';
import type { IdentityService } from '../identity/service.js';
import type { NotificationsService } from '../notifications/service.js';
import {
  type AlertFilterSpec,
  type AlertSnapshot,
  alertMatcher,
  alertStream,
  escalationTimer,
  isRecipient,
  toAlertRoot,
} from './events.js';
import { ESCALATING } from './escalation.js';
import * as repo from './repo.js';
import { ALERT_LEVELS, type AlertRow, type Audience } from './tables.js';

export interface AlertsDeps {
  db: Db;
  commit: Commit;
  cursors: CursorCodec;
  identity: IdentityService;
  notifications: NotificationsService;
  queues: Queues;
  logger: Logger;
  config: Config['alerts'];
  limits: Config['limits'];
}

const typeName = z
  .string()
  .trim()
  .regex(/^[\w.:-]{1,64}$/, 'expected 1-64 letters, digits, _ . : or -');
const regionCode = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_-]{1,32}$/, 'expected 1-32 letters, digits, _ or -')
  .transform((s) => s.toUpperCase());
const lat = z.number().min(-90, 'latitude must be between -90 and 90').max(90, 'latitude must be between -90 and 90');
const lng = z.number().min(-180, 'longitude must be between -180 and 180').max(180, 'longitude must be between -180 and 180');

const raiseInput = z.object({
  level: z.enum(ALERT_LEVELS),
  type: typeName,
  title: z.string().trim().min(1, 'must not be empty').max(200),
  body: z.string().max(4_000).nullish(),
  location: z.object({ lat, lng }).nullish(),
  regionCode: regionCode.nullish(),
  riskScore: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').nullish(),
  actionRequired: z.boolean().nullish(),
  actionUrl: z
    .string()
    .max(2_048)
    .url()
    .regex(/^https?:\/\//i, 'must be an http(s) URL')
    .nullish(),
  expiresAt: z.date().nullish(),
  audience: z
    .object({
      roles: z.array(z.enum(ROLES)).min(1).max(ROLES.length).nullish(),
      userIds: z.array(z.string().min(1).max(200)).min(1).max(1_000).nullish(),
    })
    .refine((a) => !(a.roles && a.userIds), { message: 'give roles or userIds, not both', path: ['roles'] })
    .nullish(),
  clientKey: z.string().min(1).max(128).nullish(),
});

const filterInput = z
  .object({
    minLevel: z.enum(ALERT_LEVELS).nullish(),
    types: z.array(typeName).max(50).nullish(),
    near: z.object({ lat, lng, radiusKm: z.number().positive('must be positive').max(20_038, 'at most 20038 km') }).nullish(),
    regions: z.array(regionCode).max(50).nullish(),
    minRisk: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').nullish(),
  })
  .nullish();

const RAISERS = new Set<Viewer['role']>(['provider', 'admin', 'service', 'system']);

/** The fields that make two raises "the same alert" for idempotency. */
const content = (a: Omit<AlertSnapshot, 'id' | 'orgId' | 'raisedBy' | 'clientKey' | 'createdAt' | 'escalatedAt'>) =>
  JSON.stringify([
    a.level,
    a.type,
    a.title,
    a.body,
    a.lat,
    a.lng,
    a.regionCode,
    a.riskScore,
    a.actionRequired,
    a.actionUrl,
    a.expiresAt,
    a.audience,
  ]);

/** The stored attributes of a validated raise, in snapshot form. */
const normalise = (v: z.output<typeof raiseInput>, audience: Audience) => ({
  level: v.level,
  type: v.type,
  title: v.title,
  body: v.body?.trim() ? v.body : null,
  lat: v.location?.lat ?? null,
  lng: v.location?.lng ?? null,
  regionCode: v.regionCode ?? null,
  riskScore: v.riskScore ?? null,
  actionRequired: v.actionRequired ?? false,
  actionUrl: v.actionUrl ?? null,
  expiresAt: v.expiresAt?.toISOString() ?? null,
  audience,
});

/** Alert use cases; each authorises first, then writes and appends events in one transaction. */
export function createAlertsService(deps: AlertsDeps) {
  const { db, commit, logger } = deps;

  const parseFilter = (input: unknown): AlertFilterSpec => {
    const f = parseInput(filterInput, input ?? null, undefined) ?? {};
    const out: AlertFilterSpec = {};
    if (f.minLevel) out.minLevel = f.minLevel;
    if (f.types) out.types = [...new Set(f.types)];
    if (f.near) out.near = f.near;
    if (f.regions) out.regions = [...new Set(f.regions)];
    if (f.minRisk != null) out.minRisk = f.minRisk;
    return out;
  };

  const resolveAudience = async (viewer: Viewer, a: z.output<typeof raiseInput>['audience']): Promise<Audience> => {
    if (a?.roles) return { kind: 'roles', roles: [...new Set(a.roles)].sort() };
    if (a?.userIds) {
      const ids = [...new Set(a.userIds)].sort();
      const found = await deps.identity.usersById(viewer, ids);
      if (found.length !== ids.length) throw badInput('audience.userIds: every user must belong to your organisation.', 'audience.userIds');
      return { kind: 'users', userIds: ids };
    }
    return { kind: 'org' };
  };

  const service = {
    /** Raises an alert (providers, admins, service accounts); idempotent on clientKey. */
    async raise(viewer: Viewer, input: unknown): Promise<AlertSnapshot> {
      if (!RAISERS.has(viewer.role)) throw forbidden('Only providers, admins and service accounts can raise alerts.');
      const v = parseInput(raiseInput, input);
      const fields = normalise(v, await resolveAudience(viewer, v.audience));
      const key = v.clientKey ?? null;
      const replayOf = (row: AlertRow) => {
        const prior = repo.toSnapshot(row);
        if (content(prior) !== content(fields)) throw conflict('clientKey was already used for a different alert.');
        return prior;
      };
      if (key) {
        const prior = await repo.findByClientKey(db, viewer.orgId, viewer.userId, key);
        if (prior) return replayOf(prior);
      }
      // checked after the replay lookup, so retrying a raise after its expiry still answers it
      if (v.expiresAt && v.expiresAt.getTime() <= Date.now()) throw badInput('expiresAt: must be in the future.', 'expiresAt');
      const createdAt = new Date();
      const escalateAt = ESCALATING.has(v.level) ? new Date(createdAt.getTime() + deps.config.escalationDelayMs) : null;
      let alert: AlertSnapshot;
      try {
        alert = await commit(async (tx, events) => {
          const row = await repo.insertAlert(tx, {
            id: newId(),
            orgId: viewer.orgId,
            ...fields,
            expiresAt: v.expiresAt ?? null,
            raisedBy: viewer.userId,
            clientKey: key,
            createdAt,
            escalateAt,
          });
          if (!row) throw new DuplicateKey(); // rolls back the event too
          const snapshot = repo.toSnapshot(row);
          await alertStream.append(tx, events, {
            key: viewer.orgId,
            orgId: viewer.orgId,
            type: 'AlertRaised',
            payload: { alert: snapshot },
            subject: row.id,
          });
          return snapshot;
        });
      } catch (err) {
        const prior = err instanceof DuplicateKey && key ? await repo.findByClientKey(db, viewer.orgId, viewer.userId, key) : undefined;
        if (!prior) throw err;
        return replayOf(prior);
      }
      // after commit; if the add fails, the escalation reconciler still escalates it (from PostgreSQL)
      if (escalateAt)
        await scheduleAfterCommit(escalationTimer, deps.queues, { alertId: alert.id, orgId: alert.orgId }, escalateAt, logger);
      return alert;
    },

    /** Records the viewer's acknowledgement (recipients only; others get NOT_FOUND). Idempotent. */
    async acknowledge(viewer: Viewer, id: string): Promise<AlertSnapshot> {
      const found = isUuid(id) ? await repo.findAlert(db, viewer.orgId, id) : undefined;
      if (!found || !isRecipient(repo.toSnapshot(found), viewer)) throw notFound('Alert');
      const at = new Date();
      const result = await commit(async (tx, events) => {
        const row = (await repo.findAlert(tx, viewer.orgId, id, true)) ?? found; // serialises with escalation
        if (!(await repo.insertAck(tx, viewer.orgId, id, viewer.userId, at))) return { row, added: false };
        if (row.escalateAt) await repo.clearEscalation(tx, viewer.orgId, id);
        const alert = repo.toSnapshot(row);
        const user = { id: viewer.userId, name: viewer.name, role: viewer.role };
        await alertStream.append(tx, events, {
          key: viewer.orgId,
          orgId: viewer.orgId,
          type: 'AlertAcknowledged',
          payload: { alert, alertId: id, user, at: at.toISOString() },
          subject: id,
        });
        return { row, added: true };
      });
      if (result.added && result.row.escalateAt) {
        // the handler re-checks acknowledgements in PostgreSQL, so a failed removal is harmless
        await deps.queues.afterCommit(
          () => escalationTimer.cancel(deps.queues, { alertId: id, orgId: viewer.orgId }),
          { alertId: id },
          logger,
        );
      }
      return repo.toSnapshot(result.row);
    },

    /** Alerts addressed to the viewer that match the filter, newest first (unexpired unless asked). */
    async list(viewer: Viewer, args: PageArgs & { filter?: unknown; includeExpired?: boolean | null }) {
      const filter = parseFilter(args.filter);
      const scope = `alerts-page:${viewer.userId}`;
      const page = forwardPage(args, deps.limits, deps.cursors, scope, 'alerts');
      const rows = await repo.pageAlerts(db, viewer, filter, {
        limit: page.limit + 1,
        afterId: page.afterId,
        includeExpired: Boolean(args.includeExpired),
      });
      return forwardConnection(rows, page, deps.cursors, scope, repo.toSnapshot);
    },

    /** Who acknowledged the alert and when, oldest first. */
    async acknowledgements(viewer: Viewer, alertId: string) {
      return (await repo.acksOf(db, viewer.orgId, [alertId])).map((a) => ({ user: { id: a.id, name: a.name, role: a.role }, at: a.at }));
    },

    async acknowledgedByMe(viewer: Viewer, alertId: string): Promise<boolean> {
      const acks = await repo.acksOf(db, viewer.orgId, [alertId]);
      return acks.some((a) => a.id === viewer.userId);
    },

    /** Authorises `alertRaised`: the org's alert stream, filtered per group by audience, filter and expiry. */
    async openEvents(viewer: Viewer, filterArg: unknown, after: string | null | undefined): Promise<StreamSpec> {
      const filter = parseFilter(filterArg);
      return alertStream.open(viewer.orgId, {
        orgId: viewer.orgId,
        after,
        cursors: deps.cursors,
        // the audience check depends on role and user id, so groups never mix them
        scope: `${viewer.orgId}:${viewer.role}:${viewer.userId}`,
        // ...but every recipient of a role sees the same payload (acknowledgedByMe is marked
        // viewer-dependent, which puts the user back into the render key when selected)
        renderScope: `${viewer.orgId}:${viewer.role}`,
        shares: ['orgId', 'role'],
        match: alertMatcher(viewer, filter),
        toRoot: toAlertRoot,
      });
    },
  };
  return service;
}

class DuplicateKey extends Error {}

export type AlertsService = ReturnType<typeof createAlertsService>;
