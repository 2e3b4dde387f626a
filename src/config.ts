import { z } from 'zod';
import { ROLES, type Role } from './shared/viewer.js';

/**
 * Runtime configuration, read once from the environment by {@link loadConfig}.
 * Every field has a documented env variable (see README "Configuration").
 */
export interface Config {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  /** postgres:// URL; undefined means embedded PGlite under `dataDir`. */
  databaseUrl: string | undefined;
  /** redis:// URL; undefined means 127.0.0.1:6379, else a spawned redis-server. */
  redisUrl: string | undefined;
  /**
   * Redis Cluster seed nodes (REDIS_CLUSTER_NODES); when set, Redis is a cluster reached through
   * them, `redisUrl` is not used, and fan-out goes over sharded pub/sub.
   */
  redisClusterNodes: ReadonlyArray<{ host: string; port: number }> | undefined;
  dataDir: string;
  /** Prefix for every Redis key and pub/sub channel this deployment owns. */
  redisPrefix: string;
  logLevel: string;
  auth: {
    jwtSecret: string | undefined;
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
  };
  /** Secret used to sign stream and page cursors. */
  cursorSecret: string;
  graphiql: boolean;
  /** Who may introspect the schema (`__schema`, `__type`): every caller, or viewers of these roles only ([] = nobody). */
  introspection: 'all' | readonly Role[];
  http: {
    /** Browser origins allowed for CORS and the WebSocket upgrade (same list); `*` allows any, without credentials. */
    allowedOrigins: string[] | '*';
    /** Largest request body accepted; larger ones get 413 before parsing. */
    maxBodyBytes: number;
    /** The body limit for requests with a valid service token (bulk endpoints, scoring batches). */
    maxBodyBytesService: number;
  };
  sessions: {
    /** How long a `revokeUserSessions` is remembered (tokens issued before it are refused meanwhile). */
    revocationTtlSeconds: number;
  };
  limits: {
    maxDepth: number;
    maxAliases: number;
    maxTokens: number;
    maxCost: number;
    /** Most directives in one operation document. */
    maxDirectives: number;
    maxPageSize: number;
    defaultPageSize: number;
  };
  ws: {
    allowedOrigins: string[] | '*';
    maxPayloadBytes: number;
    maxBufferedBytes: number;
    initTimeoutMs: number;
    keepAliveMs: number;
  };
  realtime: {
    /** How often each instance compares its live streams with the ledger heads (catches lost pub/sub). */
    pollMs: number;
    typingThrottleMs: number;
    /** Durable events older than this many days are deleted (0: kept forever). */
    retentionDays: number;
    /** How often a worker runs the ledger retention. */
    retentionEveryMs: number;
  };
  worker: {
    concurrency: number;
    /** BullMQ lock duration; a job of a killed worker is re-run after about this long. */
    lockMs: number;
  };
  presence: {
    /** A device not refreshed for this long counts as gone (bound for a crashed instance). */
    ttlMs: number;
    refreshMs: number;
    /** Status changes of one user within this window are sent as one. */
    coalesceMs: number;
  };
  alerts: { escalationDelayMs: number };
  reminders: {
    reconcileMs: number;
    defaultOffsetsMinutes: number[];
    attempts: number;
    backoffMs: number;
    /** Smallest gap allowed between occurrences of a recurring reminder (6-field cron allows seconds). */
    minIntervalMs: number;
    /** How long one minute of `snoozeReminder(minutes)` lasts: 60,000 ms; tests shorten it. */
    snoozeMinuteMs: number;
  };
  calls: {
    ringTimeoutMs: number;
    connectTimeoutMs: number;
    /** An accepted call ends when every device of a joined party has been gone this long. */
    livenessGraceMs: number;
    maxDurationMs: number;
    reconcileMs: number;
    /** Most participants joined at once (mesh: every pair has a peer connection). */
    meshMax: number;
    /** Most callees one call may ring. */
    maxCallees: number;
    /** Default for orgs that set none: ring a callee who is in another call, or reject with BUSY. */
    busyPolicy: 'ring' | 'reject_busy';
    signalMaxBytes: number;
    /** Signals per second one device may send on one call. */
    signalRatePerSecond: number;
    /** `startCall`s per minute one user may make. */
    startsPerMinute: number;
    turn: { uris: string[]; stunUris: string[]; secret: string | undefined; ttlSeconds: number };
  };
  predictions: {
    /** Where the model artifacts are (`<name>/<version>/{model.json,weights.bin,card.json}`); undefined: the shipped `models/`. */
    modelsDir: string | undefined;
    /** TensorFlow.js backend: auto (tfjs-node if installed, else wasm, else cpu), wasm, cpu or tensorflow. */
    backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow';
    batchMaxRows: number;
    chunkSize: number;
    /** At most one progress event per batch per this many ms (plus the terminal one). */
    progressMinMs: number;
    reconcileMs: number;
    /** A batch whose counters have not moved for this long gets its missing chunk jobs re-created. */
    stallMs: number;
    retentionDays: number;
    /** Organisations whose admins may promote model aliases (the registry is deployment-wide). */
    adminOrgs: string[];
  };
  /** The audit log of patient data (docs/audit.md). */
  audit: {
    enabled: boolean;
    /** Buffered entries are written at least this often. */
    flushMs: number;
    /** Entries per INSERT; a full batch is written at once. */
    batchSize: number;
    /** Entries held while PostgreSQL is unreachable; beyond it new entries are dropped and counted. */
    maxBuffer: number;
    retentionDays: number;
    /** Rows deleted per statement by the retention duty. */
    retentionBatch: number;
    retentionEveryMs: number;
  };
  /** Rate limits and caps (docs/protection.md, "Rate limits and caps"). */
  rateLimits: RateLimitConfig;
  shutdownGraceMs: number;
  /** Behaviour when a dependency is slow, down or missing (docs/operations.md "Operations under faults"). */
  faults: {
    /** A Redis command on the commands, pub and queue connections fails after this long without an answer (0: never). */
    redisCommandTimeoutMs: number;
    /** How long a committed mutation waits for its Redis side effects (publish, enqueue) before answering. */
    afterCommitMs: number;
    /** After SIGTERM, how long `/health/ready` answers 503 while everything keeps serving, before sockets close. */
    drainMs: number;
    /** A server that has not started within this long (a dependency unreachable) exits 1 naming the cause. */
    startupTimeoutMs: number;
  };
  /** Seed the demo organisation when the database is empty (npm start). */
  seedOnEmpty: boolean;
}

/** Operation classes with a rate budget of their own. */
export const LIMIT_CLASSES = ['query', 'mutation', 'subscribe', 'connect', 'signal'] as const;
export type LimitClass = (typeof LIMIT_CLASSES)[number];
/** A token bucket: refills `rate` tokens per second up to `burst`; one operation takes one token. */
export interface Budget {
  rate: number;
  burst: number;
}
export interface RateLimitConfig {
  /** RATE_LIMITS=off turns every rate limit and cap off (benchmarks). */
  enabled: boolean;
  /** Per user (patients, providers, admins) and per client IP address. */
  user: Record<LimitClass, Budget>;
  ip: Record<LimitClass, Budget>;
  /** Per service token subject (role `service`), instead of the user and IP budgets. */
  service: Record<LimitClass, Budget>;
  /** Longest wait for Redis before an operation is let through unchecked (fail open). */
  redisTimeoutMs: number;
  /** How long an instance may hold tokens it leased from a busy client's bucket (docs/protection.md, "Cost per operation"). */
  leaseMs: number;
  /** Proxies in front of the server: the client address is this many entries from the right of X-Forwarded-For. */
  trustedProxies: number;
  socketsPerUser: number;
  subscriptionsPerSocket: number;
  /** Most values in one subscription's arguments (list entries count one each). */
  maxFilterCost: number;
}

/** Default budgets, "rate/burst" (tokens per second / bucket capacity). */
const BUDGET_DEFAULTS: Record<'user' | 'ip' | 'service', Record<LimitClass, string>> = {
  user: { query: '20/200', mutation: '10/100', subscribe: '5/100', connect: '1/20', signal: '50/300' },
  ip: { query: '200/2000', mutation: '100/1000', subscribe: '50/1000', connect: '20/500', signal: '500/3000' },
  service: { query: '200/2000', mutation: '200/2000', subscribe: '20/200', connect: '5/50', signal: '50/300' },
};
const budget = z
  .string()
  .regex(/^\d+(\.\d+)?\/\d+$/, 'expected rate/burst, e.g. 20/200 (tokens per second / bucket size)')
  .transform((v): Budget => {
    const [rate, burst] = v.split('/').map(Number) as [number, number];
    return { rate, burst };
  })
  .refine((b) => b.rate > 0 && b.burst >= 1, 'expected a rate above 0 and a burst of at least 1');
const budgetEnv = (scope: 'user' | 'ip' | 'service') =>
  Object.fromEntries(
    LIMIT_CLASSES.map((k) => [
      `RATE_LIMIT_${k.toUpperCase()}${scope === 'user' ? '' : `_${scope.toUpperCase()}`}`,
      budget.prefault(BUDGET_DEFAULTS[scope][k]),
    ]),
  ) as Record<string, z.ZodPrefault<typeof budget>>;
const budgetsOf = (e: Record<string, unknown>, scope: 'user' | 'ip' | 'service') =>
  Object.fromEntries(
    LIMIT_CLASSES.map((k) => [k, e[`RATE_LIMIT_${k.toUpperCase()}${scope === 'user' ? '' : `_${scope.toUpperCase()}`}`] as Budget]),
  ) as Record<LimitClass, Budget>;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) =>
  z.coerce.number({ message: 'expected a whole number' }).int('expected a whole number').min(min).max(max);

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(4000),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
    .optional(),
  REDIS_CLUSTER_NODES: z.string().optional(),
  DATA_DIR: z.string().min(1).default('.data'),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,40}$/, 'expected 1-40 letters, digits, _ . or -')
    .default('wl'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  JWT_SECRET: z.string().min(32, 'expected at least 32 characters').optional(),
  JWKS_URL: z.string().url('expected an https:// URL').optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  CURSOR_SECRET: z.string().min(32, 'expected at least 32 characters').optional(),
  GRAPHIQL: bool.optional(),
  INTROSPECTION: z
    .string()
    .regex(
      new RegExp(`^(true|false|1|0|yes|no|((${ROLES.join('|')})(\\s*,\\s*(${ROLES.join('|')}))*))$`),
      `expected true, false, or comma-separated roles (${ROLES.join(', ')})`,
    )
    .optional(),
  HTTP_MAX_BODY_BYTES: int(1_024, 64 * 1024 * 1024).default(1024 * 1024),
  HTTP_MAX_BODY_BYTES_SERVICE: int(1_024, 256 * 1024 * 1024).default(16 * 1024 * 1024),
  SESSION_REVOCATION_TTL_SECONDS: int(60, 365 * 86_400).default(7 * 86_400),
  ALLOWED_ORIGINS: z.string().optional(),
  MAX_DEPTH: int(2, 50).default(12),
  MAX_ALIASES: int(1, 200).default(30),
  MAX_TOKENS: int(50, 100_000).default(2_000),
  MAX_COST: int(10, 1_000_000).default(5_000),
  MAX_DIRECTIVES: int(1, 1_000).default(50),
  MAX_PAGE_SIZE: int(1, 1_000).default(100),
  DEFAULT_PAGE_SIZE: int(1, 1_000).default(20),
  WS_ALLOWED_ORIGINS: z.string().optional(),
  WS_MAX_PAYLOAD_BYTES: int(1_024, 16 * 1024 * 1024).default(64 * 1024),
  WS_MAX_BUFFERED_BYTES: int(16 * 1024, 512 * 1024 * 1024).default(4 * 1024 * 1024),
  WS_INIT_TIMEOUT_MS: int(100, 60_000).default(3_000),
  WS_KEEPALIVE_MS: int(0, 600_000).default(30_000),
  REALTIME_POLL_MS: int(50, 600_000).default(5_000),
  LEDGER_RETENTION_DAYS: int(0, 36_500).default(30),
  LEDGER_RETENTION_EVERY_MS: int(1_000, 86_400_000).default(3_600_000),
  TYPING_THROTTLE_MS: int(0, 60_000).default(1_000),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  SHUTDOWN_DRAIN_MS: int(0, 600_000).optional(),
  STARTUP_TIMEOUT_MS: int(500, 3_600_000).default(30_000),
  REDIS_COMMAND_TIMEOUT_MS: int(0, 600_000).default(2_000),
  PUBLISH_TIMEOUT_MS: int(10, 60_000).default(300),
  WORKER_CONCURRENCY: int(1, 1_000).default(200),
  JOB_LOCK_MS: int(500, 600_000).default(30_000),
  PRESENCE_TTL_MS: int(1_000, 3_600_000).default(60_000),
  PRESENCE_REFRESH_MS: int(200, 600_000).default(20_000),
  PRESENCE_COALESCE_MS: int(0, 60_000).default(250),
  ALERT_ESCALATION_DELAY_MS: int(100, 7 * 24 * 3_600_000).default(300_000),
  REMINDER_RECONCILE_MS: int(200, 3_600_000).default(30_000),
  REMINDER_DEFAULT_OFFSETS_MINUTES: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'expected comma-separated minutes, e.g. 1440,60')
    .default('1440,60'),
  REMINDER_ATTEMPTS: int(1, 100).default(8),
  REMINDER_BACKOFF_MS: int(10, 3_600_000).default(1_000),
  REMINDER_MIN_INTERVAL_MS: int(1_000, 86_400_000).default(60_000),
  REMINDER_SNOOZE_MINUTE_MS: int(100, 60_000).default(60_000),
  CALL_RING_TIMEOUT_MS: int(1_000, 600_000).default(30_000),
  CALL_CONNECT_TIMEOUT_MS: int(1_000, 600_000).default(30_000),
  CALL_LIVENESS_GRACE_MS: int(1_000, 3_600_000).default(60_000),
  CALL_MAX_DURATION_MS: int(1_000, 7 * 24 * 3_600_000).default(4 * 3_600_000),
  CALL_RECONCILE_MS: int(100, 300_000).default(5_000),
  CALL_MESH_MAX: int(2, 8).default(4),
  CALL_MAX_CALLEES: int(1, 50).default(16),
  CALL_BUSY_POLICY: z.enum(['ring', 'reject_busy']).default('ring'),
  CALL_SIGNAL_MAX_BYTES: int(256, 1_048_576).default(65_536),
  CALL_SIGNAL_RATE: int(1, 10_000).default(50),
  CALL_START_RATE_PER_MIN: int(1, 10_000).default(30),
  TURN_URIS: z.string().default(''),
  STUN_URIS: z.string().default(''),
  TURN_SHARED_SECRET: z.string().min(16, 'expected at least 16 characters').optional(),
  TURN_TTL_SECONDS: int(60, 7 * 86_400).default(3_600),
  SEED_ON_EMPTY: bool.optional(),
  PREDICTIONS_MODELS_DIR: z.string().min(1).optional(),
  PREDICTIONS_BACKEND: z.enum(['auto', 'wasm', 'cpu', 'tensorflow']).default('auto'),
  SCORING_BATCH_MAX_ROWS: int(1, 100_000).default(10_000),
  SCORING_CHUNK_SIZE: int(10, 10_000).default(1_000),
  SCORING_PROGRESS_MIN_MS: int(0, 600_000).default(1_000),
  SCORING_RECONCILE_MS: int(200, 3_600_000).default(30_000),
  SCORING_STALL_MS: int(100, 86_400_000).default(60_000),
  SCORING_RESULT_RETENTION_DAYS: int(1, 3_650).default(30),
  RATE_LIMITS: z.enum(['on', 'off'], { message: 'expected on or off' }).default('on'),
  ...budgetEnv('user'),
  ...budgetEnv('ip'),
  ...budgetEnv('service'),
  RATE_LIMIT_REDIS_TIMEOUT_MS: int(1, 10_000).default(100),
  RATE_LIMIT_LEASE_MS: int(100, 600_000).default(30_000),
  TRUSTED_PROXIES: int(0, 10).default(0),
  WS_MAX_SOCKETS_PER_USER: int(1, 10_000).default(20),
  WS_MAX_SUBSCRIPTIONS_PER_SOCKET: int(1, 10_000).default(100),
  WS_MAX_FILTER_COST: int(1, 100_000).default(250),
  MODEL_ADMIN_ORGS: z.string().optional(),
  AUDIT: z.enum(['on', 'off'], { message: 'expected on or off' }).default('on'),
  AUDIT_FLUSH_MS: int(10, 60_000).default(250),
  AUDIT_BATCH_SIZE: int(1, 2_000).default(500),
  AUDIT_MAX_BUFFER: int(100, 10_000_000).default(100_000),
  AUDIT_RETENTION_DAYS: int(1, 36_500).default(2_190),
  AUDIT_RETENTION_BATCH: int(100, 1_000_000).default(10_000),
  AUDIT_RETENTION_EVERY_MS: int(1_000, 86_400_000).default(3_600_000),
});

/**
 * Every environment variable the configuration reads, with its default (undefined when it has none
 * or the default depends on other variables, e.g. NODE_ENV). The README's Configuration table and
 * `.env.example` are checked against this (test/api/config-docs.test.ts).
 */
export function configVariables(): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(schema.shape).map(([name, type]) => {
      const d = (type as z.ZodType).safeParse(undefined);
      return [name, d.success ? d.data : undefined];
    }),
  );
}

/**
 * INTROSPECTION: `true` (everyone), `false` (nobody) or a list of roles. Unset: everyone outside
 * production; in production admins and service accounts only.
 */
function introspectionPolicy(value: string | undefined, prod: boolean): Config['introspection'] {
  if (value === undefined) return prod ? ['admin', 'service'] : 'all';
  if (['true', '1', 'yes'].includes(value)) return 'all';
  if (['false', '0', 'no'].includes(value)) return [];
  return [...new Set(list(value) as Role[])];
}

/** `host:port,host:port` → seed nodes; null when any entry is not a host and a port. */
function parseClusterNodes(value: string): Array<{ host: string; port: number }> | null {
  const entries = list(value);
  const nodes = entries.map((entry) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(entry);
    const port = Number(m?.[2]);
    return m && port > 0 && port < 65536 ? { host: m[1]!.replace(/^\[|\]$/g, ''), port } : undefined;
  });
  return nodes.length > 0 && nodes.every((n) => n !== undefined) ? (nodes as Array<{ host: string; port: number }>) : null;
}

/** Thrown by {@link loadConfig}; its message lists every problem at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/**
 * Validates the environment and returns the config, or throws a {@link ConfigError} naming every
 * wrong or missing variable with what is expected. `devSecret` is the fallback JWT secret for
 * non-production starts (main.ts keeps one under DATA_DIR so dev tokens survive restarts).
 */
export function loadConfig(env: NodeJS.ProcessEnv, devSecret?: string): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const prod = e.NODE_ENV === 'production';
  if (!e.JWT_SECRET && !e.JWKS_URL && (prod || !devSecret)) {
    problems.push('JWT_SECRET or JWKS_URL: one is required (JWT_SECRET: at least 32 characters for HS256)');
  }
  if (prod && !e.DATABASE_URL) problems.push('DATABASE_URL: required when NODE_ENV=production');
  if (e.JWKS_URL && !e.JWT_SECRET && !e.CURSOR_SECRET && prod)
    problems.push('CURSOR_SECRET: required with JWKS_URL in production (cursors are signed with it)');
  if (e.PRESENCE_REFRESH_MS * 2 > e.PRESENCE_TTL_MS) problems.push('PRESENCE_REFRESH_MS: must be at most half of PRESENCE_TTL_MS');
  if (list(e.TURN_URIS).some((u) => !/^turns?:/.test(u))) problems.push('TURN_URIS: expected comma-separated turn: or turns: URIs');
  if (list(e.STUN_URIS).some((u) => !/^stuns?:/.test(u))) problems.push('STUN_URIS: expected comma-separated stun: URIs');
  if (list(e.TURN_URIS).length > 0 && !e.TURN_SHARED_SECRET) problems.push('TURN_SHARED_SECRET: required with TURN_URIS');
  if (e.DEFAULT_PAGE_SIZE > e.MAX_PAGE_SIZE) problems.push('DEFAULT_PAGE_SIZE: must not exceed MAX_PAGE_SIZE');
  const originsVar = e.ALLOWED_ORIGINS !== undefined ? 'ALLOWED_ORIGINS' : 'WS_ALLOWED_ORIGINS';
  const origins = (e.ALLOWED_ORIGINS ?? e.WS_ALLOWED_ORIGINS ?? '*').trim();
  if (origins !== '*' && list(origins).some((o) => !/^https?:\/\/[^/\s]+$/.test(o)))
    problems.push(`${originsVar}: expected * or comma-separated origins such as https://app.example.org (scheme and host, no path)`);
  const clusterNodes = e.REDIS_CLUSTER_NODES?.trim() ? parseClusterNodes(e.REDIS_CLUSTER_NODES) : undefined;
  if (clusterNodes === null)
    problems.push('REDIS_CLUSTER_NODES: expected comma-separated host:port seed nodes, such as 10.0.0.1:6379,10.0.0.2:6379');
  if (problems.length) throw new ConfigError(problems);

  const jwtSecret = e.JWT_SECRET ?? (e.JWKS_URL ? undefined : devSecret);
  const allowedOrigins: string[] | '*' = origins === '*' ? '*' : list(origins);
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: clusterNodes ?? undefined,
    dataDir: e.DATA_DIR,
    redisPrefix: e.REDIS_PREFIX,
    logLevel: e.LOG_LEVEL,
    auth: { jwtSecret, jwksUrl: e.JWKS_URL, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE },
    cursorSecret: e.CURSOR_SECRET ?? `cursor:${jwtSecret ?? e.JWKS_URL}`,
    graphiql: e.GRAPHIQL ?? !prod,
    introspection: introspectionPolicy(e.INTROSPECTION, prod),
    http: { allowedOrigins, maxBodyBytes: e.HTTP_MAX_BODY_BYTES, maxBodyBytesService: e.HTTP_MAX_BODY_BYTES_SERVICE },
    sessions: { revocationTtlSeconds: e.SESSION_REVOCATION_TTL_SECONDS },
    limits: {
      maxDepth: e.MAX_DEPTH,
      maxAliases: e.MAX_ALIASES,
      maxTokens: e.MAX_TOKENS,
      maxCost: e.MAX_COST,
      maxDirectives: e.MAX_DIRECTIVES,
      maxPageSize: e.MAX_PAGE_SIZE,
      defaultPageSize: e.DEFAULT_PAGE_SIZE,
    },
    ws: {
      allowedOrigins,
      maxPayloadBytes: e.WS_MAX_PAYLOAD_BYTES,
      maxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
      initTimeoutMs: e.WS_INIT_TIMEOUT_MS,
      keepAliveMs: e.WS_KEEPALIVE_MS,
    },
    realtime: {
      pollMs: e.REALTIME_POLL_MS,
      typingThrottleMs: e.TYPING_THROTTLE_MS,
      retentionDays: e.LEDGER_RETENTION_DAYS,
      retentionEveryMs: e.LEDGER_RETENTION_EVERY_MS,
    },
    worker: { concurrency: e.WORKER_CONCURRENCY, lockMs: e.JOB_LOCK_MS },
    presence: { ttlMs: e.PRESENCE_TTL_MS, refreshMs: e.PRESENCE_REFRESH_MS, coalesceMs: e.PRESENCE_COALESCE_MS },
    alerts: { escalationDelayMs: e.ALERT_ESCALATION_DELAY_MS },
    reminders: {
      reconcileMs: e.REMINDER_RECONCILE_MS,
      defaultOffsetsMinutes: e.REMINDER_DEFAULT_OFFSETS_MINUTES.split(',').map(Number),
      attempts: e.REMINDER_ATTEMPTS,
      backoffMs: e.REMINDER_BACKOFF_MS,
      minIntervalMs: e.REMINDER_MIN_INTERVAL_MS,
      snoozeMinuteMs: e.REMINDER_SNOOZE_MINUTE_MS,
    },
    calls: {
      ringTimeoutMs: e.CALL_RING_TIMEOUT_MS,
      connectTimeoutMs: e.CALL_CONNECT_TIMEOUT_MS,
      livenessGraceMs: e.CALL_LIVENESS_GRACE_MS,
      maxDurationMs: e.CALL_MAX_DURATION_MS,
      reconcileMs: e.CALL_RECONCILE_MS,
      meshMax: e.CALL_MESH_MAX,
      maxCallees: e.CALL_MAX_CALLEES,
      busyPolicy: e.CALL_BUSY_POLICY,
      signalMaxBytes: e.CALL_SIGNAL_MAX_BYTES,
      signalRatePerSecond: e.CALL_SIGNAL_RATE,
      startsPerMinute: e.CALL_START_RATE_PER_MIN,
      turn: { uris: list(e.TURN_URIS), stunUris: list(e.STUN_URIS), secret: e.TURN_SHARED_SECRET, ttlSeconds: e.TURN_TTL_SECONDS },
    },
    predictions: {
      modelsDir: e.PREDICTIONS_MODELS_DIR,
      backend: e.PREDICTIONS_BACKEND,
      batchMaxRows: e.SCORING_BATCH_MAX_ROWS,
      chunkSize: e.SCORING_CHUNK_SIZE,
      progressMinMs: e.SCORING_PROGRESS_MIN_MS,
      reconcileMs: e.SCORING_RECONCILE_MS,
      stallMs: e.SCORING_STALL_MS,
      retentionDays: e.SCORING_RESULT_RETENTION_DAYS,
      // development: the demo organisation's admin may promote; production: nobody unless listed
      adminOrgs: list(e.MODEL_ADMIN_ORGS ?? (e.NODE_ENV === 'development' ? 'demo' : '')),
    },
    audit: {
      enabled: e.AUDIT === 'on',
      flushMs: e.AUDIT_FLUSH_MS,
      batchSize: e.AUDIT_BATCH_SIZE,
      maxBuffer: e.AUDIT_MAX_BUFFER,
      retentionDays: e.AUDIT_RETENTION_DAYS,
      retentionBatch: e.AUDIT_RETENTION_BATCH,
      retentionEveryMs: e.AUDIT_RETENTION_EVERY_MS,
    },
    rateLimits: {
      enabled: e.RATE_LIMITS === 'on',
      user: budgetsOf(e, 'user'),
      ip: budgetsOf(e, 'ip'),
      service: budgetsOf(e, 'service'),
      redisTimeoutMs: e.RATE_LIMIT_REDIS_TIMEOUT_MS,
      leaseMs: e.RATE_LIMIT_LEASE_MS,
      trustedProxies: e.TRUSTED_PROXIES,
      socketsPerUser: e.WS_MAX_SOCKETS_PER_USER,
      subscriptionsPerSocket: e.WS_MAX_SUBSCRIPTIONS_PER_SOCKET,
      maxFilterCost: e.WS_MAX_FILTER_COST,
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    faults: {
      redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
      afterCommitMs: e.PUBLISH_TIMEOUT_MS,
      drainMs: e.SHUTDOWN_DRAIN_MS ?? (prod ? 5_000 : 0),
      startupTimeoutMs: e.STARTUP_TIMEOUT_MS,
    },
    seedOnEmpty: e.SEED_ON_EMPTY ?? !prod,
  };
}
