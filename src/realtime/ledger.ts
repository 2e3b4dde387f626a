import { type SQL, and, eq, sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../db/client.js';
import { streamEvents, streamHeads } from './tables.js';

/** A durable event as stored in the ledger and published on pub/sub. */
export interface LedgerEvent<P = Record<string, unknown>> {
  stream: string;
  position: number;
  orgId: string;
  type: string;
  payload: P;
  /** Commit-side timestamp, ISO 8601. */
  at: string;
}

export interface AppendInput<P> {
  stream: string;
  orgId: string;
  type: string;
  payload: P;
  /** The entity this event is about, for {@link redact}. */
  subject?: string;
}

/**
 * Allocates the next position of `stream` inside the caller's transaction. The head row stays
 * locked until commit, so a concurrent writer of the same stream waits and gets the next
 * position only after this one is visible: positions are in commit order, with no holes.
 */
export async function nextPosition(tx: Executor, stream: string, orgId: string): Promise<number> {
  const [row] = await tx
    .insert(streamHeads)
    .values({ stream, orgId, position: 1 })
    .onConflictDoUpdate({ target: streamHeads.stream, set: { position: sql`${streamHeads.position} + 1` } })
    .returning({ position: streamHeads.position, orgId: streamHeads.orgId });
  if (!row || row.orgId !== orgId) throw new Error('ledger: stream belongs to another organisation');
  return row.position;
}

/**
 * Reserves `count` consecutive positions on each stream in one statement (set-based appends).
 * Returns each stream's first reserved position. Streams are locked in sorted order, so
 * concurrent batches cannot deadlock on each other.
 */
export async function reservePositions(
  tx: Executor,
  reqs: ReadonlyArray<{ stream: string; orgId: string; count: number }>,
): Promise<Map<string, number>> {
  const sorted = [...reqs].sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
  const rows = await tx
    .insert(streamHeads)
    .values(sorted.map((r) => ({ stream: r.stream, orgId: r.orgId, position: r.count })))
    .onConflictDoUpdate({ target: streamHeads.stream, set: { position: sql`${streamHeads.position} + excluded.position` } })
    .returning({ stream: streamHeads.stream, position: streamHeads.position, orgId: streamHeads.orgId });
  const byStream = new Map(sorted.map((q) => [q.stream, q]));
  const out = new Map<string, number>();
  for (const r of rows) {
    const req = byStream.get(r.stream);
    if (!req || req.orgId !== r.orgId) throw new Error('ledger: stream belongs to another organisation');
    out.set(r.stream, r.position - req.count + 1);
  }
  return out;
}

/** Writes many events at reserved positions in one statement. */
export async function insertEvents<P>(
  tx: Executor,
  items: ReadonlyArray<AppendInput<P> & { position: number }>,
): Promise<LedgerEvent<P>[]> {
  if (items.length === 0) return [];
  const at = new Date();
  await tx.insert(streamEvents).values(
    items.map((i) => ({
      stream: i.stream,
      position: i.position,
      orgId: i.orgId,
      type: i.type,
      subject: i.subject ?? null,
      payload: i.payload as Record<string, unknown>,
      at,
    })),
  );
  return items.map((i) => ({
    stream: i.stream,
    orgId: i.orgId,
    type: i.type,
    payload: i.payload,
    position: i.position,
    at: at.toISOString(),
  }));
}

/**
 * The domain's own row of a {@link appendFused}: an `INSERT … SELECT … FROM head WHERE
 * head.org_id = <org> … RETURNING <column> AS position`, where `head` (columns `position`,
 * `org_id`) holds the stream position just taken. Returning no row (e.g. `ON CONFLICT DO
 * NOTHING`) appends no event.
 */
export type FusedRow = SQL;

/**
 * A condition checked in the same statement as a {@link appendFused}, before the position is taken:
 * `pre` is a query of one row (the CTE `pre`), `when` a boolean over its columns. When `when` is
 * false nothing is written (no position taken) and the caller still gets `pre`'s row, e.g. the
 * membership check and the idempotency key's prior row of the send path.
 */
export interface FusedGuard {
  pre: SQL;
  when: SQL;
}

/**
 * Appends one event fused with the caller's row in ONE statement (the messaging send path): take
 * the stream's next position (locking its head row until commit, so positions stay in commit
 * order), insert the domain row at that position, and insert the event with the position also
 * written into the payload at `positionAt`. `event` is undefined when the row inserted nothing (a
 * caller in a transaction rolls back, which also returns the position) or `guard` said no.
 *
 * One statement is atomic by itself, so with a `guard` it can run outside any transaction: one
 * round trip instead of BEGIN, the statement and COMMIT (and a separate pre-check). An error in
 * any part (e.g. a unique violation of the row) undoes the position too.
 */
export async function appendFused<P>(
  tx: Executor,
  input: AppendInput<P>,
  row: FusedRow,
  at: Date,
  positionAt?: readonly string[],
  guard?: FusedGuard,
): Promise<{ event?: LedgerEvent<P>; pre?: Record<string, unknown> }> {
  const payload = JSON.stringify(input.payload);
  const stored = positionAt
    ? sql`jsonb_set(${payload}::jsonb, ${`{${positionAt.join(',')}}`}::text[], to_jsonb(r.position))`
    : sql`${payload}::jsonb`;
  const take = guard
    ? sql`select ${input.stream}, ${input.orgId}, 1 from pre where ${guard.when}`
    : sql`values (${input.stream}, ${input.orgId}, 1)`;
  const res = await tx.execute(sql`with ${guard ? sql`pre as (${guard.pre}), ` : sql``}head as (
      insert into stream_heads (stream, org_id, position) ${take}
      on conflict (stream) do update set position = stream_heads.position + 1
      returning position, org_id
    ), r as (${row}), ev as (
      insert into stream_events (stream, position, org_id, type, subject, payload, at)
      select ${input.stream}, r.position, ${input.orgId}, ${input.type}, ${input.subject ?? null}, ${stored}, ${at.toISOString()}::timestamptz
      from r
      returning position
    )
    ${guard ? sql`select pre.*, (select position from r) as position from pre` : sql`select position from r`}`);
  const [first] = rowsOf<Record<string, unknown> & { position: string | number | null }>(res);
  const pre = guard ? first : undefined;
  if (!first || first.position === null || first.position === undefined) return { pre };
  const position = Number(first.position);
  let out: unknown = input.payload;
  if (positionAt) out = withValueAt(input.payload, positionAt, position);
  return {
    event: { stream: input.stream, orgId: input.orgId, type: input.type, payload: out as P, position, at: at.toISOString() },
    pre,
  };
}

/** A copy of `obj` with `value` at `path` (objects along the path are copied, nothing mutated). */
function withValueAt(obj: unknown, path: readonly string[], value: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  const o = (obj ?? {}) as Record<string, unknown>;
  return { ...o, [head]: withValueAt(o[head], rest, value) };
}

/**
 * Overwrites `path` (e.g. ['message','body']) with `value` in every earlier event of `stream` about
 * `subject`, inside the caller's transaction: a deleted message's body is gone from replay too.
 */
export async function redact(tx: Executor, stream: string, orgId: string, subject: string, path: string[], value: unknown) {
  await tx
    .update(streamEvents)
    .set({ payload: sql`jsonb_set(${streamEvents.payload}, ${`{${path.join(',')}}`}::text[], ${JSON.stringify(value)}::jsonb)` })
    .where(and(eq(streamEvents.stream, stream), eq(streamEvents.orgId, orgId), eq(streamEvents.subject, subject)));
}

/**
 * Events of one stream after `after`, in order, at most `limit`, and in the same snapshot the
 * position up to which retention has deleted the stream (`trimmed`): a reader whose `after` is
 * below it would miss events.
 */
export async function readRange(
  db: Executor,
  stream: string,
  orgId: string,
  after: number,
  limit = 500,
): Promise<{ trimmed: number; events: LedgerEvent[] }> {
  const rows = await rowsOf<{
    trimmed: string | number;
    position: string | number | null;
    type: string;
    payload: unknown;
    at: Date | string;
  }>(
    await db.execute(sql`
      select h.trimmed, e.position, e.type, e.payload, e.at
      from ${streamHeads} h
      left join lateral (
        select position, type, payload, at from ${streamEvents}
        where stream = h.stream and org_id = ${orgId} and position > ${after}
        order by position limit ${limit}) e on true
      where h.stream = ${stream}`),
  );
  const events: LedgerEvent[] = [];
  for (const r of rows)
    if (r.position !== null)
      events.push({
        stream,
        orgId,
        position: Number(r.position),
        type: r.type,
        payload: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
        at: new Date(r.at).toISOString(),
      });
  return { trimmed: Number(rows[0]?.trimmed ?? 0), events };
}

/** One range of {@link readRanges}: a stream's events after `after`. */
export interface RangeRequest {
  stream: string;
  orgId: string;
  after: number;
}

/**
 * {@link readRange} for many ranges in one statement (one snapshot, one round trip): what the
 * replays of a reconnect storm read together. Answers range by range, in order, each exactly as
 * `readRange` would.
 */
export async function readRanges(
  db: Executor,
  ranges: readonly RangeRequest[],
  limit = 500,
): Promise<Array<{ trimmed: number; events: LedgerEvent[] }>> {
  if (ranges.length === 0) return [];
  if (ranges.length === 1) return [await readRange(db, ranges[0]!.stream, ranges[0]!.orgId, ranges[0]!.after, limit)];
  const json = JSON.stringify(ranges.map((r, i) => ({ i, stream: r.stream, org: r.orgId, after: r.after })));
  const rows = rowsOf<{
    i: number;
    trimmed: string | number;
    position: string | number | null;
    type: string;
    payload: unknown;
    at: Date | string;
  }>(
    await db.execute(sql`
      select r.i, h.trimmed, e.position, e.type, e.payload, e.at
      from jsonb_to_recordset(${json}::jsonb) as r(i int, stream text, org text, after bigint)
      join ${streamHeads} h on h.stream = r.stream
      left join lateral (
        select position, type, payload, at from ${streamEvents}
        where stream = r.stream and org_id = r.org and position > r.after
        order by position limit ${limit}) e on true
      order by r.i, e.position`),
  );
  const out = ranges.map(() => ({ trimmed: 0, events: [] as LedgerEvent[] }));
  for (const row of rows) {
    const o = out[row.i]!;
    const r = ranges[row.i]!;
    o.trimmed = Number(row.trimmed ?? 0);
    if (row.position !== null)
      o.events.push({
        stream: r.stream,
        orgId: r.orgId,
        position: Number(row.position),
        type: row.type,
        payload: (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload) as Record<string, unknown>,
        at: new Date(row.at).toISOString(),
      });
  }
  return out;
}

/**
 * The head poll's read: the highest position of every stream written by a transaction whose id is
 * at least `since` (all streams of the deployment, not only the ones watched here: the work grows
 * with the changes, not with the number of idle streams), and the `xmin` of this statement's
 * snapshot, the next `since`: every transaction not visible now has an id at least that.
 */
export async function changedSince(
  db: Executor,
  since: number,
): Promise<{ xmin: number; heads: Array<{ stream: string; position: number }> }> {
  const rows = await rowsOf<{ xmin: string | number; stream: string | null; position: string | number | null }>(
    await db.execute(sql`
      with s as (select pg_snapshot_xmin(pg_current_snapshot())::text::bigint as xmin)
      select s.xmin, c.stream, c.position from s
      left join (select stream, max(position) as position from ${streamEvents} where tx >= ${since} group by stream) c on true`),
  );
  const heads: Array<{ stream: string; position: number }> = [];
  for (const r of rows) if (r.stream !== null) heads.push({ stream: r.stream, position: Number(r.position) });
  return { xmin: Number(rows[0]?.xmin), heads };
}

/** A stream's head position and the `xmin` of the snapshot it was read in (see {@link changedSince}). */
export async function readHeadAt(db: Executor, stream: string): Promise<{ position: number; xmin: number }> {
  const [r] = await rowsOf<{ xmin: string | number; position: string | number | null }>(
    await db.execute(sql`
      select pg_snapshot_xmin(pg_current_snapshot())::text::bigint as xmin,
             (select position from ${streamHeads} where stream = ${stream}) as position`),
  );
  return { position: Number(r?.position ?? 0), xmin: Number(r?.xmin) };
}

/**
 * {@link readHeadAt} for many streams in one statement (one snapshot): the head of each, in
 * order, and that snapshot's `xmin`. What the stream joins of a reconnect storm read together.
 */
export async function readHeadsAt(db: Executor, streams: readonly string[]): Promise<Array<{ position: number; xmin: number }>> {
  if (streams.length <= 1) return Promise.all(streams.map((s) => readHeadAt(db, s)));
  const rows = rowsOf<{ xmin: string | number; i: string | number; position: string | number | null }>(
    await db.execute(sql`
      select pg_snapshot_xmin(pg_current_snapshot())::text::bigint as xmin, r.i, h.position
      from jsonb_array_elements_text(${JSON.stringify(streams)}::jsonb) with ordinality as r(stream, i)
      left join ${streamHeads} h on h.stream = r.stream`),
  );
  const out = streams.map(() => ({ position: 0, xmin: Number(rows[0]?.xmin) }));
  for (const r of rows) out[Number(r.i) - 1]!.position = Number(r.position ?? 0);
  return out;
}

/**
 * Retention: deletes up to `limit` events of `orgId` older than `before` in one statement, and in
 * that same statement raises each touched stream's `trimmed` to the highest position deleted (a
 * resume from an older cursor is then refused, never answered with a partial history). Rows other
 * transactions hold are skipped. Returns how many events were deleted.
 */
export async function trimOrg(db: Executor, orgId: string, before: Date, limit: number): Promise<number> {
  const [r] = await rowsOf<{ n: number }>(
    await db.execute(sql`
      with doomed as (
        select stream, position from ${streamEvents}
        where org_id = ${orgId} and at < ${before.toISOString()}::timestamptz
        order by at limit ${limit} for update skip locked),
      gone as (
        delete from ${streamEvents} e using doomed d
        where e.stream = d.stream and e.position = d.position
        returning e.stream, e.position),
      marks as (select stream, max(position) as position from gone group by stream),
      raised as (
        update ${streamHeads} h set trimmed = greatest(h.trimmed, m.position)
        from marks m where h.stream = m.stream)
      select count(*)::int as n from gone`),
  );
  return Number(r?.n ?? 0);
}

/** The organisations with events in the ledger (one index probe per organisation). */
export async function ledgerOrgs(db: Executor): Promise<string[]> {
  const rows = rowsOf<{ org: string }>(
    await db.execute(sql`
      with recursive o as (
        select min(org_id) as org from ${streamEvents}
        union all
        select (select min(org_id) from ${streamEvents} where org_id > o.org) from o where o.org is not null)
      select org from o where org is not null`),
  );
  return rows.map((r) => r.org);
}
