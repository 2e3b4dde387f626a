import type { ChainableCommander } from 'ioredis';
import { anyPipeline, type RedisClient } from '../../shared/redis-client.js';

/** Presence states, in ascending precedence: a user shows the highest state of any live device. */
export const PRESENCE_STATUSES = ['offline', 'away', 'online', 'busy', 'in_call'] as const;
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

/**
 * One atomic step on one user's presence. All times come from the Redis clock (`TIME`), so
 * instances with drifting clocks agree on expiry, last-seen and change times.
 *
 * KEYS[1] hash `…:pr:{org:user}`: `s:<device>` status per device, `def` status for new devices,
 *         `txt` status text, `agg` current aggregate ("status|devices|text"), `chg` when it last
 *         changed, `off` when the user last went offline, `pub` the last published aggregate,
 *         `ver` its version: set in the same step that marks a change published, to
 *         max(ver + 1, now in ms), so versions of one user strictly increase whichever instance
 *         publishes, and stay increasing after the hash expired or Redis lost it.
 * KEYS[2] sorted set `…:pr:{org:user}:dev`: device id → expiry (ms). Devices past their expiry
 *         are removed by whichever step touches the user next (their last refresh is "last seen").
 * ARGV: op, device, status, text mode (k keep | s set), text, leaseMs, retentionMs, immediate (1|0).
 *
 * Returns {computed, now, status, devices, text, off, chg, dirty, published, deviceScore, version}.
 * `dirty`: the aggregate differs from the last published one. `published`: this step marked it
 * published (immediate mode, or op `flush`), so the caller must publish it; the compare-and-set
 * on `pub` is what keeps two instances from publishing the same change twice.
 */
const LUA = `
local h, d = KEYS[1], KEYS[2]
local op, dev, st, tmode, txt = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lease, keep, immediate = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rank = { offline = 0, away = 1, online = 2, busy = 3, in_call = 4 }
local IDLE = 'offline|0|'

local gone = redis.call('ZRANGEBYSCORE', d, '-inf', now, 'WITHSCORES')
local goneAt = 0
for i = 1, #gone, 2 do
  redis.call('HDEL', h, 's:' .. gone[i], 'p:' .. gone[i])
  goneAt = math.max(goneAt, tonumber(gone[i + 1]) - lease)
end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', d, '-inf', now) end

local function add()
  redis.call('ZADD', d, now + lease, dev)
  redis.call('HSET', h, 's:' .. dev, redis.call('HGET', h, 'def') or 'online')
end

if op == 'read' and redis.call('EXISTS', h) == 0 then
  return { 1, now, 'offline', 0, '', 0, 0, 0, 0, false, 0 }
elseif op == 'refresh' then
  if redis.call('ZSCORE', d, dev) then
    redis.call('ZADD', d, now + lease, dev)
    redis.call('PEXPIRE', h, keep)
    redis.call('PEXPIRE', d, keep)
    if #gone == 0 then
      local agg, pub = unpack(redis.call('HMGET', h, 'agg', 'pub'))
      return { 0, now, '', 0, '', 0, 0, ((agg or IDLE) ~= (pub or IDLE)) and 1 or 0, 0, now + lease, 0 }
    end
  else
    add()
  end
elseif op == 'open' then
  add()
elseif op == 'close' then
  redis.call('ZREM', d, dev)
  redis.call('HDEL', h, 's:' .. dev, 'p:' .. dev)
elseif op == 'callon' then
  if redis.call('ZSCORE', d, dev) then
    local cur = redis.call('HGET', h, 's:' .. dev) or 'online'
    if cur ~= 'in_call' then redis.call('HSET', h, 'p:' .. dev, cur) end
    redis.call('HSET', h, 's:' .. dev, 'in_call')
  end
elseif op == 'calloff' then
  local was = redis.call('HGET', h, 'p:' .. dev)
  if was then
    if redis.call('HGET', h, 's:' .. dev) == 'in_call' then redis.call('HSET', h, 's:' .. dev, was) end
    redis.call('HDEL', h, 'p:' .. dev)
  end
elseif op == 'set' then
  if not redis.call('ZSCORE', d, dev) then redis.call('ZADD', d, now + lease, dev) end
  redis.call('HSET', h, 's:' .. dev, st)
elseif op == 'setall' then
  redis.call('HSET', h, 'def', st)
  for _, m in ipairs(redis.call('ZRANGE', d, 0, -1)) do redis.call('HSET', h, 's:' .. m, st) end
end
if (op == 'set' or op == 'setall') and tmode == 's' then
  if txt == '' then redis.call('HDEL', h, 'txt') else redis.call('HSET', h, 'txt', txt) end
end

local best, n = 'offline', 0
for _, m in ipairs(redis.call('ZRANGE', d, 0, -1)) do
  local s = redis.call('HGET', h, 's:' .. m) or 'online'
  if s ~= 'offline' then n = n + 1 end
  if (rank[s] or 0) > rank[best] then best = s end
end
local text = redis.call('HGET', h, 'txt') or ''
local cur = best .. '|' .. n .. '|' .. text
local prev = redis.call('HGET', h, 'agg') or IDLE
if cur ~= prev then
  if best == 'offline' and string.sub(prev, 1, 8) ~= 'offline|' then
    local direct = op == 'close' or op == 'set' or op == 'setall' or op == 'callon' or op == 'calloff'
    redis.call('HSET', h, 'off', (not direct and goneAt > 0) and goneAt or now)
  end
  redis.call('HSET', h, 'agg', cur, 'chg', now)
end
local pub, ver = unpack(redis.call('HMGET', h, 'pub', 'ver'))
local dirty = cur ~= (pub or IDLE)
local published = dirty and (immediate or op == 'flush')
ver = tonumber(ver or 0)
if published then
  ver = math.max(ver + 1, now)
  redis.call('HSET', h, 'pub', cur, 'ver', string.format('%d', ver))
end
if op ~= 'read' then
  redis.call('PEXPIRE', h, keep)
  redis.call('PEXPIRE', d, keep)
end
local off, chg = unpack(redis.call('HMGET', h, 'off', 'chg'))
local score = dev ~= '' and redis.call('ZSCORE', d, dev) or false
return { 1, now, best, n, text, tonumber(off or 0), tonumber(chg or 0), dirty and 1 or 0, published and 1 or 0, score, ver }
`;

/** Claims due entries of a schedule (sorted set member → due ms) by pushing them `lease` ms ahead. */
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local until_ = now + tonumber(ARGV[2])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', until_, m) end
return { until_, due }
`;

/** Removes members whose score is still exactly ARGV[1] (nobody rescheduled them meanwhile). */
const RELEASE = `
local n = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[1]) then n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return n
`;

/**
 * The `now` of Redis, for callers that schedule relative to it. KEYS[1] (unused) is the schedule it
 * is compared with: on a cluster the clock read is that of the master holding it, the one whose
 * clock `CLAIM` uses.
 */
const NOW = `local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** `callon`/`calloff`: a live device enters a call (IN_CALL, its status kept in `p:<device>`) and leaves it (status restored). */
export type Op = 'open' | 'refresh' | 'close' | 'set' | 'setall' | 'read' | 'flush' | 'callon' | 'calloff';

export interface OpInput {
  orgId: string;
  userId: string;
  op: Op;
  device?: string;
  status?: PresenceStatus;
  /** undefined keeps the text; null or '' clears it (ops `set` and `setall`). */
  text?: string | null;
}

export interface OpResult {
  /** False for a refresh that changed nothing but the device's expiry (then only `dirty` is set). */
  computed: boolean;
  now: number;
  status: PresenceStatus;
  devices: number;
  text: string | null;
  /** When the user last went offline (ms), 0 if never. */
  offAt: number;
  /** When status, text or device count last changed (ms), 0 if never recorded. */
  changedAt: number;
  dirty: boolean;
  published: boolean;
  /** The device's expiry after the step, or null when it is gone. */
  deviceScore: number | null;
  /** The version of the last published change (this step's when `published`); 0 if none. */
  version: number;
}

type Raw = [number, number, string, number, string, number, number, number, number, string | null, number];

interface Scripted {
  wlPresence(...args: Array<string | number>): ChainableCommander;
}

export interface PresenceStoreOptions {
  prefix: string;
  /** How long a device stays live after a refresh. */
  leaseMs: number;
  /** How long the state of a user with no activity is kept (last seen, default status). */
  retentionMs: number;
  /** Publish changes in the same step (no coalescing window). */
  immediate: boolean;
}

/**
 * Redis layout and atomic steps of presence (no SQL: presence is ephemeral). Per-user keys share
 * the hash tag `{org:user}`, so every step touches one slot (a Redis Cluster runs it on one master). Two instance-wide sorted sets are
 * hints, updated in the same pipeline but not the same script: `…:pr:due` (device → expiry, read
 * by the sweeper) and `…:pr:pending` (user → when its coalesced change is due to be published).
 */
export function createPresenceStore(redis: RedisClient, opts: PresenceStoreOptions) {
  const p = opts.prefix;
  if (!(redis as RedisClient & Partial<Scripted>).wlPresence) {
    redis.defineCommand('wlPresence', { numberOfKeys: 2, lua: LUA });
    redis.defineCommand('wlClaim', { numberOfKeys: 1, lua: CLAIM });
    redis.defineCommand('wlRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('wlNow', { numberOfKeys: 1, lua: NOW });
  }
  const userKey = (orgId: string, userId: string) => `${p}:pr:{${orgId}:${userId}}`;
  const dueKey = `${p}:pr:due`;
  const pendingKey = `${p}:pr:pending`;
  const call = <T>(name: string, ...args: Array<string | number>) =>
    (redis as RedisClient & Record<string, (...a: Array<string | number>) => Promise<T>>)[name]!(...args);

  const parse = (r: Raw): OpResult => ({
    computed: r[0] === 1,
    now: Number(r[1]),
    status: (r[2] || 'offline') as PresenceStatus,
    devices: Number(r[3]),
    text: r[4] ? r[4] : null,
    offAt: Number(r[5]),
    changedAt: Number(r[6]),
    dirty: r[7] === 1,
    published: r[8] === 1,
    deviceScore: r[9] ? Number(r[9]) : null,
    version: Number(r[10] ?? 0),
  });

  return {
    /** The `due` hint member of one device. */
    dueMember: (orgId: string, userId: string, device: string) => JSON.stringify([orgId, userId, device]),
    pendingMember: (orgId: string, userId: string) => JSON.stringify([orgId, userId]),

    /**
     * Runs steps in one pipeline, in order. Steps that make a device live also move its `due`
     * hint (by this instance's clock: the sweeper corrects it from the step's answer).
     */
    async run(steps: readonly OpInput[]): Promise<OpResult[]> {
      if (steps.length === 0) return [];
      // one round trip on one Redis; on a cluster the user keys and the hint live on other masters
      const pipe = anyPipeline(redis) as ChainableCommander & Scripted;
      const hintAt = Date.now() + opts.leaseMs;
      for (const s of steps) {
        const k = userKey(s.orgId, s.userId);
        const text = s.text === undefined ? ['k', ''] : ['s', s.text ?? ''];
        pipe.wlPresence(
          k,
          `${k}:dev`,
          s.op,
          s.device ?? '',
          s.status ?? '',
          text[0]!,
          text[1]!,
          opts.leaseMs,
          opts.retentionMs,
          opts.immediate ? 1 : 0,
        );
        if (s.device && (s.op === 'open' || s.op === 'refresh' || s.op === 'set'))
          pipe.zadd(dueKey, hintAt, JSON.stringify([s.orgId, s.userId, s.device]));
        if (s.device && s.op === 'close') pipe.zrem(dueKey, JSON.stringify([s.orgId, s.userId, s.device]));
      }
      const replies = (await pipe.exec()) ?? [];
      const out: OpResult[] = [];
      for (const [err, value] of replies) {
        if (err) throw err;
        if (Array.isArray(value)) out.push(parse(value as Raw));
      }
      return out;
    },

    /** Devices whose hint says they may have expired (by this instance's clock). */
    async dueDevices(limit: number): Promise<Array<{ member: string; orgId: string; userId: string; device: string }>> {
      const members = await redis.zrangebyscore(dueKey, '-inf', Date.now(), 'LIMIT', 0, limit);
      return members.flatMap((member) => {
        const v = safeJson(member);
        return Array.isArray(v) && v.length === 3 ? [{ member, orgId: String(v[0]), userId: String(v[1]), device: String(v[2]) }] : [];
      });
    },

    /** Corrects hints after a sweep: gone devices lose theirs, live ones get their real expiry. */
    async settleDue(updates: ReadonlyArray<{ member: string; score: number | null }>): Promise<void> {
      if (updates.length === 0) return;
      const pipe = anyPipeline(redis);
      for (const u of updates) {
        if (u.score === null) pipe.zrem(dueKey, u.member);
        else pipe.zadd(dueKey, 'XX', u.score, u.member);
      }
      await pipe.exec();
    },

    /** Schedules a publish of the user's aggregate at `at` (Redis clock); an earlier one wins. */
    async schedule(entries: ReadonlyArray<{ orgId: string; userId: string; at: number }>): Promise<void> {
      if (entries.length === 0) return;
      await redis.zadd(pendingKey, 'LT', ...entries.flatMap((e) => [e.at, JSON.stringify([e.orgId, e.userId])]));
    },

    /** Claims due publishes for `leaseMs`; if this instance dies, another claims them after that. */
    async claimPending(
      limit: number,
      leaseMs: number,
    ): Promise<{ lease: number; users: Array<{ member: string; orgId: string; userId: string }> }> {
      const [lease, members] = await call<[number, string[]]>('wlClaim', pendingKey, limit, leaseMs);
      const users = members.flatMap((member) => {
        const v = safeJson(member);
        return Array.isArray(v) && v.length === 2 ? [{ member, orgId: String(v[0]), userId: String(v[1]) }] : [];
      });
      return { lease: Number(lease), users };
    },

    /** Drops claimed entries that nobody rescheduled while they were being published. */
    async releasePending(lease: number, members: readonly string[]): Promise<void> {
      if (members.length > 0) await call('wlRelease', pendingKey, lease, ...members);
    },

    /** Milliseconds until the earliest pending publish (Redis clock), or undefined if none. */
    async nextPendingIn(): Promise<number | undefined> {
      const first = (await redis.zrange(pendingKey, '0', '0', 'WITHSCORES'))[1];
      if (first === undefined) return undefined;
      return Math.max(0, Number(first) - Number(await call<number>('wlNow', pendingKey)));
    },
  };
}

export type PresenceStore = ReturnType<typeof createPresenceStore>;

const safeJson = (s: string): unknown => {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
};
