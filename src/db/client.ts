import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from './schema.js';
import { lockDataDir } from '../runtime/data-lock.js';

/** The Drizzle database, whichever driver is behind it (postgres.js or PGlite). */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A database or an open transaction: repo functions accept either. */
export type Executor = Db;

/** Rows of a raw `execute` on either driver (postgres.js returns an array, PGlite `{ rows }`). */
export function rowsOf<T>(res: unknown): T[] {
  return (Array.isArray(res) ? res : ((res as { rows?: T[] }).rows ?? [])) as T[];
}

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** Applies the migrations in drizzle/ (idempotent). */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));

async function findMigrations(): Promise<string> {
  const { existsSync } = await import('node:fs');
  for (const p of [resolve(here, '../../drizzle'), resolve(here, '../../../drizzle')]) {
    if (existsSync(join(p, 'meta', '_journal.json'))) return p;
  }
  throw new Error('drizzle/ migrations folder not found');
}

type Sql = import('postgres').Sql;

/**
 * drizzle runs every query through postgres.js `unsafe(..., { prepare: false })`, which for a query
 * with parameters costs two round trips (Describe, then Bind/Execute) and a fresh plan each time.
 * Forcing named prepared statements makes it one round trip from the second use on. Statements
 * are cached per connection and dropped with it (`max_lifetime`). Applied to transactions too.
 */
function preparedByDefault(sql: Sql): Sql {
  const patch = (s: Sql) => {
    const unsafe = s.unsafe.bind(s);
    (s as { unsafe: unknown }).unsafe = (q: string, args?: unknown[], opts?: Record<string, unknown>) =>
      unsafe(q, args as never, { ...opts, prepare: true });
    return s;
  };
  const begin = sql.begin.bind(sql) as (...a: unknown[]) => Promise<unknown>;
  (sql as { begin: unknown }).begin = (...a: unknown[]) => {
    const fn = a[a.length - 1] as (tx: Sql) => unknown;
    return begin(...a.slice(0, -1), (tx: Sql) => fn(patch(tx)));
  };
  return patch(sql);
}

/**
 * Opens PostgreSQL through postgres.js when `url` is given, else an embedded PGlite persisted in
 * `dataDir/pglite` (or in memory for `dataDir === ':memory:'`).
 */
export async function openDatabase(url: string | undefined, dataDir: string, poolSize = 10): Promise<Database> {
  if (url) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const { migrate } = await import('drizzle-orm/postgres-js/migrator');
    const sql = preparedByDefault(postgres(url, { max: poolSize, onnotice: () => {}, idle_timeout: 30, max_lifetime: 30 * 60 }));
    const db = drizzle(sql, { schema });
    return {
      db: db as unknown as Db,
      kind: 'postgres',
      migrate: async () => migrate(db, { migrationsFolder: await findMigrations() }),
      ping: async () => void (await sql`select 1`),
      close: () => sql.end({ timeout: 5 }),
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  let client: InstanceType<typeof PGlite>;
  let release = () => {};
  if (dataDir === ':memory:') client = new PGlite();
  else {
    const dir = resolve(dataDir, 'pglite');
    mkdirSync(dirname(dir), { recursive: true });
    release = lockDataDir(dataDir); // one process at a time: a second opener would corrupt or abort
    client = new PGlite(dir);
  }
  try {
    await client.waitReady;
  } catch (err) {
    release();
    throw err;
  }
  const db = drizzle({ client, schema });
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    migrate: async () => migrate(db, { migrationsFolder: await findMigrations() }),
    ping: async () => void (await client.query('select 1')),
    close: async () => {
      await client.close();
      release();
    },
  };
}
