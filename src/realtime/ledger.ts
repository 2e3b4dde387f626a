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

/** One event of an {@link appendFusedMany}: the event and its commit-side time. */
export interface FusedItem<P> extends AppendInput<P> {
  at: Date;
}

/**
 * The domain's part of an {@link appendFusedMany}. `pre` selects one row per item (the CTE `pre`)
 * with at least the columns `i` (the item's index) and `ok` (write it), plus whatever the caller
 * wants back (e.g. why an item was not written), and no column named `position`. `row` inserts the
 * domain's rows from the CTE `numbered` (pre's columns of the `ok` items plus their `position`):
 * exactly one row per numbered item, or it fails the statement (no ON CONFLICT DO NOTHING).
 */
export interface FusedMany {
  pre: SQL;
  row: SQL;
}

/**
 * Appends many events fused with the caller's rows in ONE statement (the messaging send path,
 * group-committed): it can run outside any transaction, one round trip for BEGIN, the writes and
 * COMMIT, because one statement is atomic by itself. For the `ok` items, takes consecutive positions on each stream (in item order; head rows locked in
 * stream order, so concurrent batches do not deadlock, until the statement commits), inserts the
 * domain rows and the events. A stream of another organisation takes no position and writes
 * nothing for its items. Any error undoes the whole statement. Returns, per item in order, `pre`'s
 * row and the event when it was written.
 */
export async function appendFusedMany<P>(
  db: Executor,
  items: ReadonlyArray<FusedItem<P>>,
  domain: FusedMany,
  positionAt?: readonly string[],
): Promise<Array<{ event?: LedgerEvent<P>; pre: Record<string, unknown> }>> {
  if (items.length === 0) return [];
  const input = JSON.stringify(
    items.map((x, i) => ({ i, stream: x.stream, org_id: x.orgId, type: x.type, subject: x.subject ?? null, payload: x.payload, at: x.at })),
  );
  const stored = positionAt ? sql`jsonb_set(e.payload, ${`{${positionAt.join(',')}}`}::text[], to_jsonb(n.position))` : sql`e.payload`;
  const res = await db.execute(sql`with ev_in as (
      select * from jsonb_to_recordset(${input}::jsonb)
        as x(i int, stream text, org_id text, type text, subject text, payload jsonb, at timestamptz)
    ), pre as (${domain.pre}), counts as (
      select e.stream, e.org_id, count(*)::bigint as n from ev_in e join pre p on p.i = e.i where p.ok group by e.stream, e.org_id
    ), head as (
      insert into stream_heads (stream, org_id, position) select stream, org_id, n from counts order by stream
      on conflict (stream) do update set position = stream_heads.position + excluded.position
        where stream_heads.org_id = excluded.org_id
      returning stream, position
    ), numbered as (
      select p.*, h.position - c.n + row_number() over (partition by e.stream order by e.i) as position
      from pre p join ev_in e on e.i = p.i join counts c on c.stream = e.stream join head h on h.stream = e.stream
      where p.ok
    ), r as (${domain.row}), ev as (
      insert into stream_events (stream, position, org_id, type, subject, payload, at)
      select e.stream, n.position, e.org_id, e.type, e.subject, ${stored}, e.at from numbered n join ev_in e on e.i = n.i
      returning position
    )
    select p.*, n.position from pre p left join numbered n on n.i = p.i order by p.i`);
  const rows = rowsOf<Record<string, unknown> & { i: number; position: string | number | null }>(res);
  const out: Array<{ event?: LedgerEvent<P>; pre: Record<string, unknown> }> = items.map(() => ({ pre: {} }));
  for (const r of rows) {
    const item = items[r.i];
    const slot = out[r.i];
    if (!item || !slot) continue;
    slot.pre = r;
    if (r.position === null || r.position === undefined) continue;
    const position = Number(r.position);
    const payload = (positionAt ? withValueAt(item.payload, positionAt, position) : item.payload) as P;
    slot.event = { stream: item.stream, orgId: item.orgId, type: item.type, payload, position, at: item.at.toISOString() };
  }
  return out;
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
/** A row of a range read: the stream's trimmed mark, and one event or (none after `after`) nulls. */
interface RangeRow {
  trimmed: string | number;
  position: string | number | null;
  type: string;
  payload: unknown;
  at: Date | string;
}

/** The event of a range row whose position is not null. */
function rangeEvent(r: RangeRow, stream: string, orgId: string): LedgerEvent {
  return {
    stream,
    orgId,
    position: Number(r.position),
    type: r.type,
    payload: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
    at: new Date(r.at).toISOString(),
  };
}

export async function readRange(
  db: Executor,
  stream: string,
  orgId: string,
  after: number,
  limit = 500,
): Promise<{ trimmed: number; events: LedgerEvent[] }> {
  const rows = rowsOf<RangeRow>(
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
  for (const r of rows) if (r.position !== null) events.push(rangeEvent(r, stream, orgId));
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
  const rows = rowsOf<RangeRow & { i: number }>(
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
    if (row.position !== null) o.events.push(rangeEvent(row, r.stream, r.orgId));
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
