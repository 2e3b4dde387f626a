// The benchmark's load generator (not a test), forked by run.ts. It holds thousands of raw
// graphql-transport-ws sockets (plain `ws`: connection_init with the token, one subscribe, frames
// scanned without JSON.parse on the hot path) and is also the publisher (sendMessage over HTTP
// keep-alive), so send time and receive time come from one clock.
//
// Commands (IPC, see common.ts rpc): init, connect, warmup, fanoutStep, fanoutReport, disconnect,
// sendStep, stats. Everything it talks to is on 127.0.0.1; every loop is bounded in count and time.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import { mintToken } from '../../src/http/auth.js';
import { Histogram, type LatencySummary, serveRpc, sleep } from './common.js';

const HOST = '127.0.0.1';
const MAX_INFLIGHT = 256;
const PAD = 'x'.repeat(80);

export const SUBSCRIPTION = `subscription BenchEvents($conversationId: ID!) {
  conversationEvents(conversationId: $conversationId) {
    __typename
    ... on MessageAdded { cursor at message { id body createdAt sender { id name } } }
  }
}`;
/** The storm's resume: the same selection with `after` (a cursor a few events back). */
export const SUBSCRIPTION_AFTER = `subscription BenchResume($conversationId: ID!, $after: String) {
  conversationEvents(conversationId: $conversationId, after: $after) {
    __typename
    ... on MessageAdded { cursor at message { id body createdAt sender { id name } } }
  }
}`;
const SEND = `mutation BenchSend($input: SendMessageInput!) { sendMessage(input: $input) { id } }`;

// ---- tokens, HTTP -----------------------------------------------------------------------------

let tokens: string[] = [];
const agents = new Map<string, Agent>();
const agentFor = (port: number, maxSockets: number) => {
  const key = `${port}:${maxSockets}`;
  let a = agents.get(key);
  if (!a) {
    a = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    agents.set(key, a);
  }
  return a;
};

interface PostResult {
  ok: boolean;
  error?: string;
}

/** HTTP retries after a reused keep-alive socket was closed by the server (a race of any keep-alive client). */
export let httpRetries = 0;

/**
 * POSTs sendMessage; ok when HTTP 200 and no `errors` in the body. Times out after 30 s. A request
 * that fails with a reset keep-alive socket is retried once with the same clientMessageId, which is
 * exactly what the idempotency key is for (the retry cannot create a second message).
 */
async function postSend(port: number, maxSockets: number, user: number, conversationId: string, body: string): Promise<PostResult> {
  const payload = JSON.stringify({
    query: SEND,
    variables: { input: { conversationId, body, clientMessageId: randomUUID() } },
  });
  const first = await postOnce(port, maxSockets, user, payload);
  if (first.ok || !first.retriable) return first;
  httpRetries++;
  return postOnce(port, maxSockets, user, payload);
}

function postOnce(port: number, maxSockets: number, user: number, payload: string): Promise<PostResult & { retriable?: boolean }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: HOST,
        port,
        path: '/graphql',
        method: 'POST',
        agent: agentFor(port, maxSockets),
        timeout: 30_000,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          authorization: tokens[user]!,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode === 200 && !text.includes('"errors"')) resolve({ ok: true });
          else resolve({ ok: false, error: `${res.statusCode} ${text.slice(0, 200)}` });
        });
        res.on('error', (err) => resolve({ ok: false, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ ok: false, error: err.message, retriable: err.code === 'ECONNRESET' || err.message === 'socket hang up' }),
    );
    req.end(payload);
  });
}

// ---- fan-out scenario state -------------------------------------------------------------------

interface Conv {
  id: string;
  /** Subscriber indices (sockets) in this conversation. */
  subs: number[];
  /** User indices allowed to send (members). */
  senders: number[];
  /** Storm: the cursor every subscriber of this conversation resumes after. */
  after?: string;
}

interface StepState {
  rate: number;
  seconds: number;
  planned: number;
  sent: number;
  sendErrors: number;
  firstError: string | undefined;
  expected: number;
  receipts: number;
  unique: number;
  dup: number;
  inWindow: number;
  cursorDup: number;
  cursorGap: number;
  start: number;
  windowEnd: number;
  publishEnd: number;
  drainEnd: number;
  uniqueAtDrain: number;
  lastRecv: number;
  latency: Histogram;
  /** From the event's `at` (stamped by the server in the send transaction) to receipt: the server-side part. */
  fromAt: Histogram;
  http: Histogram;
  cpuStart: NodeJS.CpuUsage;
  cpuEnd: NodeJS.CpuUsage | undefined;
}

const CURSOR = Buffer.from('"cursor":"');
const BODY = Buffer.from('"body":"');
const AT = Buffer.from('"at":"');
const DAY_MS = 86_400_000;

/** ms since UTC midnight of an ISO instant `YYYY-MM-DDTHH:MM:SS.mmmZ` starting at `at`, or -1. */
function isoMsOfDay(data: Buffer, at: number): number {
  if (at < 0 || at + 24 > data.length || data[at + 10] !== 0x54 /* T */) return -1;
  const d = (o: number) => data[at + o]! - 48;
  return ((d(11) * 10 + d(12)) * 60 + d(14) * 10 + d(15)) * 60_000 + (d(17) * 10 + d(18)) * 1000 + d(20) * 100 + d(21) * 10 + d(22);
}
const B64 = new Int16Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').forEach((c, i) => (B64[c.charCodeAt(0)] = i));

interface Scenario {
  name: string;
  convs: Conv[];
  sockets: Array<WebSocket | undefined>;
  subConv: Int32Array;
  subUser: Int32Array;
  subPort: Int32Array;
  open: Uint8Array;
  lastPos: Float64Array;
  maxMsgs: number;
  words: number;
  bits: Uint32Array;
  sendTime: Float64Array;
  msgStep: Int16Array;
  nextK: number;
  steps: StepState[];
  warmRecv: number;
  other: number;
  errors: number;
  firstErrorFrame: string | undefined;
  closes: Map<number, number>;
  cursorDupWarm: number;
  cursorGapWarm: number;
  /** Storm: the position each socket's replay must reach (0: not resuming), when it did (ms), when it started. */
  target: Float64Array;
  doneAt: Float64Array;
  openAt: Float64Array;
  resumed: number;
  connectStart: number;
}

let sc: Scenario | undefined;

function decodePos(data: Buffer, from: number): { pos: number; end: number } {
  // base64url of the decimal position, up to the '.' that starts the signature
  let pos = 0;
  let acc = 0;
  let bits = 0;
  let i = from;
  for (; i < data.length; i++) {
    const ch = data[i]!;
    if (ch === 0x2e || ch === 0x22) break;
    const v = B64[ch] ?? -1;
    if (v < 0) return { pos: -1, end: i };
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      const byte = (acc >> bits) & 0xff;
      if (byte < 48 || byte > 57) return { pos: -1, end: i };
      pos = pos * 10 + (byte - 48);
    }
  }
  return { pos, end: i };
}

function onFrame(s: Scenario, i: number, data: Buffer): void {
  const now = performance.now();
  const c = data.indexOf(CURSOR);
  if (c < 0) return slowFrame(s, data);
  const { pos, end } = decodePos(data, c + CURSOR.length);
  const atIdx = data.indexOf(AT, end);
  const atMs = isoMsOfDay(data, atIdx < 0 ? -1 : atIdx + AT.length);
  const b = data.indexOf(BODY, end);
  if (pos < 0 || b < 0) return slowFrame(s, data);
  let p = b + BODY.length;
  const kind = data[p++];
  let k = 0;
  for (; p < data.length; p++) {
    const ch = data[p]!;
    if (ch < 48 || ch > 57) break;
    k = k * 10 + (ch - 48);
  }
  const last = s.lastPos[i]!;
  let cDup = 0;
  let cGap = 0;
  if (last > 0) {
    if (pos <= last) cDup = 1;
    else if (pos > last + 1) cGap = pos - last - 1;
  }
  if (pos > last) {
    s.lastPos[i] = pos;
    if (pos >= s.target[i]! && s.target[i]! > 0 && s.doneAt[i] === 0) {
      s.doneAt[i] = now;
      s.resumed++;
    }
  }
  if (kind !== 0x62 /* b */ || k >= s.maxMsgs || s.msgStep[k]! < 0) {
    s.warmRecv++;
    s.cursorDupWarm += cDup;
    s.cursorGapWarm += cGap;
    return;
  }
  const st = s.steps[s.msgStep[k]!]!;
  st.receipts++;
  st.cursorDup += cDup;
  st.cursorGap += cGap;
  const w = i * s.words + (k >>> 5);
  const mask = 1 << (k & 31);
  if ((s.bits[w]! & mask) !== 0) {
    st.dup++;
    return;
  }
  s.bits[w] = s.bits[w]! | mask;
  st.unique++;
  if (now <= st.windowEnd) st.inWindow++;
  st.lastRecv = now;
  st.latency.add(now - s.sendTime[k]!);
  if (atMs >= 0) {
    let d = (Date.now() % DAY_MS) - atMs;
    if (d < -DAY_MS / 2) d += DAY_MS;
    st.fromAt.add(d);
  }
}

function slowFrame(s: Scenario, data: Buffer): void {
  let msg: { type?: string; payload?: unknown };
  try {
    msg = JSON.parse(data.toString()) as typeof msg;
  } catch {
    s.other++;
    return;
  }
  if (msg.type === 'error' || (msg.type === 'next' && (msg.payload as { errors?: unknown })?.errors)) {
    s.errors++;
    s.firstErrorFrame ??= data.toString().slice(0, 300);
  } else s.other++;
}

function newStep(rate: number, seconds: number): StepState {
  return {
    rate,
    seconds,
    planned: Math.round(rate * seconds),
    sent: 0,
    sendErrors: 0,
    firstError: undefined,
    expected: 0,
    receipts: 0,
    unique: 0,
    dup: 0,
    inWindow: 0,
    cursorDup: 0,
    cursorGap: 0,
    start: 0,
    windowEnd: 0,
    publishEnd: 0,
    drainEnd: 0,
    uniqueAtDrain: 0,
    lastRecv: 0,
    latency: new Histogram(),
    fromAt: new Histogram(),
    http: new Histogram(),
    cpuStart: process.cpuUsage(),
    cpuEnd: undefined,
  };
}

/** Picks a random element. */
const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)]!;

// ---- commands ---------------------------------------------------------------------------------

interface ConnectArgs {
  name: string;
  /** Ports of the two instances; subscriber i goes to ports[i % ports.length]. */
  ports: number[];
  convs: Array<{ id: string; subUsers: number[]; senders: number[]; after?: string; target?: number }>;
  /** Upper bound of messages the steps will send (sizes the exactly-once bitsets). */
  maxMsgs: number;
  concurrency: number;
  timeoutMs: number;
}

async function connect(a: ConnectArgs) {
  const total = a.convs.reduce((n, c) => n + c.subUsers.length, 0);
  const words = Math.ceil(a.maxMsgs / 32);
  const s: Scenario = {
    name: a.name,
    convs: [],
    sockets: new Array(total).fill(undefined),
    subConv: new Int32Array(total),
    subUser: new Int32Array(total),
    subPort: new Int32Array(total),
    open: new Uint8Array(total),
    lastPos: new Float64Array(total),
    maxMsgs: a.maxMsgs,
    words,
    bits: new Uint32Array(total * words),
    sendTime: new Float64Array(a.maxMsgs),
    msgStep: new Int16Array(a.maxMsgs).fill(-1),
    nextK: 0,
    steps: [],
    warmRecv: 0,
    other: 0,
    errors: 0,
    firstErrorFrame: undefined,
    closes: new Map(),
    cursorDupWarm: 0,
    cursorGapWarm: 0,
    target: new Float64Array(total),
    doneAt: new Float64Array(total),
    openAt: new Float64Array(total),
    resumed: 0,
    connectStart: performance.now(),
  };
  let i = 0;
  for (const [ci, c] of a.convs.entries()) {
    const conv: Conv = { id: c.id, subs: [], senders: c.senders, after: c.after };
    for (const u of c.subUsers) {
      s.subConv[i] = ci;
      s.subUser[i] = u;
      s.subPort[i] = a.ports[i % a.ports.length]!;
      s.target[i] = c.target ?? 0;
      conv.subs.push(i);
      i++;
    }
    s.convs.push(conv);
  }
  sc = s;
  const started = performance.now();
  s.connectStart = started;
  const deadline = started + a.timeoutMs;
  let next = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const openOne = (idx: number) =>
    new Promise<void>((resolve) => {
      s.openAt[idx] = performance.now();
      const ws = new WebSocket(`ws://${HOST}:${s.subPort[idx]}/graphql`, 'graphql-transport-ws', {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: 20_000,
      });
      s.sockets[idx] = ws;
      let acked = false;
      let settled = false;
      const done = (err?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          failed++;
          firstFailure ??= err;
        }
        resolve();
      };
      const timer = setTimeout(() => {
        done('connect timeout');
        ws.terminate();
      }, 20_000);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: tokens[s.subUser[idx]!] } })));
      ws.on('message', (data: Buffer) => {
        if (acked) return onFrame(s, idx, data);
        const text = data.toString();
        if (text.includes('"connection_ack"')) {
          acked = true;
          s.open[idx] = 1;
          const conv = s.convs[s.subConv[idx]!]!;
          ws.send(
            JSON.stringify({
              id: '1',
              type: 'subscribe',
              payload:
                conv.after === undefined
                  ? { query: SUBSCRIPTION, operationName: 'BenchEvents', variables: { conversationId: conv.id } }
                  : { query: SUBSCRIPTION_AFTER, operationName: 'BenchResume', variables: { conversationId: conv.id, after: conv.after } },
            }),
          );
          done();
        } else slowFrame(s, data);
      });
      ws.on('close', (code) => {
        if (s.open[idx]) s.open[idx] = 0;
        s.closes.set(code, (s.closes.get(code) ?? 0) + 1);
        done(`closed ${code} before ack`);
      });
      ws.on('error', (err) => done(err.message));
    });
  await Promise.all(
    Array.from({ length: Math.min(a.concurrency, total) }, async () => {
      while (next < total && performance.now() < deadline) await openOne(next++);
    }),
  );
  for (let j = next; j < total; j++) failed++;
  return { sockets: total, failed, firstFailure, ms: performance.now() - started };
}

/** One message per conversation (alternating instances); resolves when every open socket got its. */
async function warmup(a: { timeoutMs: number; perConv: number }) {
  const s = sc;
  if (!s) throw new Error('connect first');
  const started = performance.now();
  const before = s.warmRecv;
  let expected = 0;
  let errors = 0;
  let firstError: string | undefined;
  const jobs: Array<() => Promise<void>> = [];
  let n = 0;
  for (const conv of s.convs) {
    const openSubs = conv.subs.filter((i) => s.open[i]).length;
    for (let r = 0; r < a.perConv; r++) {
      const port = s.subPort[conv.subs[n % conv.subs.length]!]!;
      const j = n++;
      jobs.push(async () => {
        const res = await postSend(port, 64, pick(conv.senders), conv.id, `w${j} warm-up ${PAD}`);
        if (res.ok) expected += openSubs;
        else {
          errors++;
          firstError ??= res.error;
        }
      });
    }
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < jobs.length && performance.now() - started < a.timeoutMs) await jobs[next++]!();
    }),
  );
  while (s.warmRecv - before < expected && performance.now() - started < a.timeoutMs) await sleep(20);
  return { sent: n, errors, firstError, expected, received: s.warmRecv - before, ms: performance.now() - started };
}

/**
 * Storm: sends `perConv` messages to each conversation (bodies `m…`: not counted by the steps), so
 * that subscribers resuming from a cursor taken before have that many events to replay.
 */
async function publish(a: { ports: number[]; convs: Array<{ id: string; senders: number[] }>; perConv: number; concurrency: number }) {
  const started = performance.now();
  let errors = 0;
  let firstError: string | undefined;
  const jobs = a.convs.flatMap((c, j) => Array.from({ length: a.perConv }, (_, r) => ({ c, port: a.ports[(j + r) % a.ports.length]!, r })));
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(a.concurrency, jobs.length) }, async () => {
      while (next < jobs.length) {
        const { c, port, r } = jobs[next++]!;
        const res = await postSend(port, a.concurrency, pick(c.senders), c.id, `m${r} missed while away ${PAD}`);
        if (!res.ok) {
          errors++;
          firstError ??= res.error;
        }
      }
    }),
  );
  return { sent: jobs.length, errors, firstError, ms: performance.now() - started };
}

/**
 * Storm: waits until every socket that resumed got its replay up to its conversation's target
 * (or `timeoutMs`); times are from the start of `connect`.
 */
async function stormWait(a: { timeoutMs: number }) {
  const s = sc;
  if (!s) throw new Error('connect first');
  let expected = 0;
  for (let i = 0; i < s.target.length; i++) if (s.target[i]! > 0) expected++;
  const end = performance.now() + a.timeoutMs;
  while (s.resumed < expected && performance.now() < end) await sleep(10);
  const perSocket = new Histogram();
  let last = 0;
  for (let i = 0; i < s.doneAt.length; i++) {
    const d = s.doneAt[i]!;
    if (d === 0) continue;
    perSocket.add(d - s.openAt[i]!);
    last = Math.max(last, d);
  }
  return {
    expected,
    resumed: s.resumed,
    allMs: s.resumed === expected ? last - s.connectStart : Number.NaN,
    lastMs: last ? last - s.connectStart : Number.NaN,
    perSocket: perSocket.summary(),
    errors: s.errors,
    firstErrorFrame: s.firstErrorFrame,
    cursorDup: s.cursorDupWarm,
    cursorGap: s.cursorGapWarm,
    closes: Object.fromEntries(s.closes),
  };
}

export type StormResult = Awaited<ReturnType<typeof stormWait>>;

interface StepArgs {
  rate: number;
  seconds: number;
  /** Wait at most this long after the last send for stragglers; also ends after 2 s with no progress. */
  drainMs: number;
}

async function fanoutStep(a: StepArgs) {
  const s = sc;
  if (!s) throw new Error('connect first');
  const stepIndex = s.steps.length;
  const st = newStep(a.rate, a.seconds);
  s.steps.push(st);
  const ports = [...new Set(Array.from(s.subPort))];
  const start = performance.now();
  st.start = start;
  st.windowEnd = start + a.seconds * 1000;
  const hardStop = start + a.seconds * 2000 + 5_000;
  let inflight = 0;
  const pending = new Set<Promise<void>>();
  const sendOne = () => {
    const k = s.nextK++;
    const conv = s.convs.length === 1 ? s.convs[0]! : pick(s.convs);
    const port = ports[k % ports.length]!;
    const expected = conv.subs.reduce((n, i) => n + s.open[i]!, 0);
    s.msgStep[k] = stepIndex;
    const t0 = performance.now();
    s.sendTime[k] = t0;
    inflight++;
    st.sent++;
    const p = postSend(port, MAX_INFLIGHT, pick(conv.senders), conv.id, `b${k} bench message ${PAD}`).then((r) => {
      inflight--;
      st.http.add(performance.now() - t0);
      if (r.ok) st.expected += expected;
      else {
        st.sendErrors++;
        st.firstError ??= r.error;
      }
      pending.delete(p);
    });
    pending.add(p);
  };
  while (st.sent < st.planned && s.nextK < s.maxMsgs) {
    const now = performance.now();
    if (now > hardStop) break;
    const due = Math.min(st.planned, Math.floor(((now - start) / 1000) * a.rate) + 1);
    while (st.sent < due && inflight < MAX_INFLIGHT && s.nextK < s.maxMsgs) sendOne();
    await sleep(Math.max(1, Math.min(10, 1000 / a.rate / 2)));
  }
  st.publishEnd = performance.now();
  const sendsDone = Promise.all([...pending]);
  await Promise.race([sendsDone, sleep(30_000)]);
  // drain: until everything expected arrived, 2 s without progress, or drainMs
  const drainStart = performance.now();
  let lastUnique = st.unique;
  let lastProgress = drainStart;
  while (st.unique < st.expected || inflight > 0) {
    const now = performance.now();
    if (st.unique !== lastUnique) {
      lastUnique = st.unique;
      lastProgress = now;
    }
    if (now - drainStart > a.drainMs || now - lastProgress > 2_000) break;
    await sleep(20);
  }
  st.drainEnd = performance.now();
  st.uniqueAtDrain = st.unique;
  st.cpuEnd = process.cpuUsage(st.cpuStart);
  return summarizeStep(s, st);
}

function summarizeStep(s: Scenario, st: StepState) {
  const window = Math.max(st.windowEnd, st.publishEnd) - st.start;
  const cpu = st.cpuEnd ? ((st.cpuEnd.user + st.cpuEnd.system) / 1000 / (st.drainEnd - st.start)) * 100 : Number.NaN;
  return {
    rate: st.rate,
    seconds: st.seconds,
    planned: st.planned,
    sent: st.sent,
    publishRate: st.sent / (window / 1000),
    offeredPerSec: st.expected / (window / 1000),
    sendErrors: st.sendErrors,
    firstError: st.firstError,
    expected: st.expected,
    delivered: st.unique,
    deliveredAtDrain: st.uniqueAtDrain,
    deliveredPerSec: st.inWindow / (window / 1000),
    lost: st.expected - st.unique,
    dup: st.dup,
    cursorDup: st.cursorDup,
    cursorGap: st.cursorGap,
    latency: st.latency.summary(),
    fromAt: st.fromAt.summary(),
    http: st.http.summary(),
    drainMs: st.drainEnd - st.publishEnd,
    loadgenCpu: cpu,
    loadgenCpuMs: st.cpuEnd ? (st.cpuEnd.user + st.cpuEnd.system) / 1000 : Number.NaN,
    openSockets: s.open.reduce((n, v) => n + v, 0),
  };
}

export type StepResult = ReturnType<typeof summarizeStep>;

/** Final accounting per step (late arrivals after a step's drain are counted here). */
async function fanoutReport(a: { settleMs: number }) {
  const s = sc;
  if (!s) throw new Error('connect first');
  const start = performance.now();
  const missing = () => s.steps.reduce((n, st) => n + (st.expected - st.unique), 0);
  while (missing() > 0 && performance.now() - start < a.settleMs) await sleep(50);
  return {
    steps: s.steps.map((st) => summarizeStep(s, st)),
    warmupReceived: s.warmRecv,
    warmupCursorDup: s.cursorDupWarm,
    warmupCursorGap: s.cursorGapWarm,
    errorFrames: s.errors,
    firstErrorFrame: s.firstErrorFrame,
    otherFrames: s.other,
    closes: Object.fromEntries(s.closes),
    httpRetries,
    openSockets: s.open.reduce((n, v) => n + v, 0),
  };
}

async function disconnect(a: { timeoutMs: number }) {
  const s = sc;
  if (!s) return { closed: 0 };
  const waits: Array<Promise<void>> = [];
  for (const ws of s.sockets) {
    if (!ws || ws.readyState === WebSocket.CLOSED) continue;
    waits.push(new Promise<void>((r) => ws.once('close', () => r())));
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(1000, 'bench done');
  }
  await Promise.race([Promise.all(waits), sleep(a.timeoutMs)]);
  for (const ws of s.sockets) if (ws && ws.readyState !== WebSocket.CLOSED) ws.terminate();
  sc = undefined;
  return { closed: waits.length };
}

interface SendStepArgs {
  port: number;
  concurrency: number;
  seconds: number;
  convs: Array<{ id: string; senders: number[] }>;
}

/** Closed loop: `concurrency` clients each send, wait for the answer, send again, for `seconds`. */
async function sendStep(a: SendStepArgs) {
  const latency = new Histogram();
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + a.seconds * 1000;
  let n = 0;
  const maxRequests = 200_000;
  await Promise.all(
    Array.from({ length: a.concurrency }, async () => {
      while (performance.now() < end && n < maxRequests) {
        const conv = pick(a.convs);
        const j = n++;
        const t0 = performance.now();
        const r = await postSend(a.port, a.concurrency, pick(conv.senders), conv.id, `s${j} send bench ${PAD}`);
        const t1 = performance.now();
        if (r.ok) {
          ok++;
          latency.add(t1 - t0);
        } else {
          errors++;
          firstError ??= r.error;
        }
      }
    }),
  );
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return {
    concurrency: a.concurrency,
    httpRetriesSoFar: httpRetries,
    seconds: elapsed / 1000,
    ok,
    errors,
    firstError,
    perSec: ok / (elapsed / 1000),
    latency: latency.summary(),
    loadgenCpu: ((cpu.user + cpu.system) / 1000 / elapsed) * 100,
  };
}

export type SendResult = Awaited<ReturnType<typeof sendStep>>;
export type FanoutReport = Awaited<ReturnType<typeof fanoutReport>>;
export type { LatencySummary };

serveRpc(
  {
    async init(a: { secret: string; users: Array<{ id: string; orgId: string; name: string; role: 'patient' | 'provider' | 'admin' }> }) {
      tokens = [];
      for (const u of a.users)
        tokens.push(`Bearer ${await mintToken(a.secret, { sub: u.id, org: u.orgId, role: u.role, name: u.name }, 3600)}`);
      return { tokens: tokens.length };
    },
    connect,
    publish,
    stormWait,
    warmup,
    fanoutStep,
    fanoutReport,
    disconnect,
    sendStep,
    stats: () => ({ cpu: process.cpuUsage(), mem: process.memoryUsage(), httpRetries }),
  },
  () => {
    for (const ws of sc?.sockets ?? []) ws?.terminate();
    process.exit(0);
  },
);
process.send?.({ ready: true });
