import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GqlResponse, gql } from '../harness/clients.js';
import { seedOrg, type SeededOrg } from '../harness/seed.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { conversation } from '../messaging/ops.js';
import { type Raw, openRaw } from '../protocol/raw.js';

let open: TestApp; // the test env: introspection and GraphiQL on, default limits
let strict: TestApp; // introspection and GraphiQL off, MAX_DEPTH=5, MAX_DIRECTIVES=5
let org: SeededOrg;
let strictOrg: SeededOrg;
const sockets: Raw[] = [];
beforeAll(async () => {
  [open, strict] = await Promise.all([
    startApp(),
    startApp({ env: { INTROSPECTION: 'false', GRAPHIQL: 'false', MAX_DEPTH: '5', MAX_DIRECTIVES: '5' } }),
  ]);
  [org, strictOrg] = await Promise.all([seedOrg(open), seedOrg(strict)]);
});
afterAll(stopAll);
afterEach(() => {
  for (const s of sockets.splice(0)) s.ws.close(1000);
});

/** Runs `query` over a raw graphql-ws socket; resolves with the `next` payload or the `error` payload. */
async function overWs(app: TestApp, token: string, query: string, variables?: Record<string, unknown>) {
  const raw = await openRaw(app);
  sockets.push(raw);
  await raw.init(token);
  raw.send({ id: '1', type: 'subscribe', payload: { query, variables } });
  const f = await raw.next((x) => x.id === '1' && (x.type === 'next' || x.type === 'error'));
  return f.type === 'error' ? { errors: f.payload as GqlResponse['errors'] } : (f.payload as Omit<GqlResponse, 'status'>);
}
const code = (r: { errors?: GqlResponse['errors'] }) => r.errors?.[0]?.extensions?.code;

const DEEP = `{ conversations { edges { node { lastMessage { sender { id } } } } } }`;
const INTROSPECT = `{ __schema { queryType { name } } }`;

describe('operation limits', () => {
  it('refuses an operation deeper than MAX_DEPTH with BAD_USER_INPUT on HTTP and WebSocket', async () => {
    const http = await gql(strict, strictOrg.patient.token, DEEP);
    expect(code(http)).toBe('BAD_USER_INPUT');
    expect(http.data ?? null).toBeNull();
    const ws = await overWs(strict, strictOrg.patient.token, DEEP);
    expect(code(ws)).toBe('BAD_USER_INPUT');
    // the same operation is fine within the default limit
    expect((await gql(open, org.patient.token, DEEP)).errors).toBeUndefined();
  });

  it('refuses too many aliases with BAD_USER_INPUT', async () => {
    const query = `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(' ')} }`;
    expect(code(await gql(open, org.patient.token, query))).toBe('BAD_USER_INPUT');
    expect(code(await overWs(open, org.patient.token, query))).toBe('BAD_USER_INPUT');
  });

  it('refuses more directives than MAX_DIRECTIVES with BAD_USER_INPUT on HTTP and WebSocket', async () => {
    const query = (n: number) => `{ me { ${Array.from({ length: n }, () => 'id @include(if: true)').join(' ')} } }`;
    expect((await gql(strict, strictOrg.patient.token, query(5))).errors).toBeUndefined();
    const http = await gql(strict, strictOrg.patient.token, query(6));
    expect(code(http)).toBe('BAD_USER_INPUT');
    expect(code(await overWs(strict, strictOrg.patient.token, query(6)))).toBe('BAD_USER_INPUT');
    expect((await gql(open, org.patient.token, query(6))).errors).toBeUndefined(); // the default is 50
  });

  it('answers a wrongly typed variable with BAD_USER_INPUT, not an internal error', async () => {
    const query = `mutation($k:ConversationKind!){ createConversation(input:{kind:$k, memberIds:["x"]}){ id } }`;
    const http = await gql(open, org.patient.token, query, { k: 'NOPE' });
    expect(code(http)).toBe('BAD_USER_INPUT');
    expect(http.errors?.[0]?.message).toContain('NOPE');
    const page = `query($n:Int){ conversations(first:$n){ edges { cursor } } }`;
    expect(code(await gql(open, org.patient.token, page, { n: 'ten' }))).toBe('BAD_USER_INPUT');
    expect(code(await overWs(open, org.patient.token, page, { n: 'ten' }))).toBe('BAD_USER_INPUT');
  });
});

describe('field suggestions', () => {
  it('are hidden on HTTP and WebSocket', async () => {
    for (const query of ['{ me { nam } }', '{ conversatio { edges { cursor } } }']) {
      const http = await gql(open, org.patient.token, query);
      const ws = await overWs(open, org.patient.token, query);
      for (const r of [http, ws]) {
        expect(code(r), query).toBe('BAD_USER_INPUT');
        expect(JSON.stringify(r.errors)).not.toMatch(/did you mean/i);
      }
    }
  });
});

describe('introspection', () => {
  it('is enabled in the test environment, on HTTP and WebSocket', async () => {
    expect((await gql(open, org.patient.token, INTROSPECT)).data.__schema.queryType.name).toBe('Query');
    expect((await overWs(open, org.patient.token, INTROSPECT)).data.__schema.queryType.name).toBe('Query');
  });

  it('is refused with FORBIDDEN under INTROSPECTION=false on HTTP and on WebSocket', async () => {
    for (const query of [INTROSPECT, '{ __type(name: "Query") { name } }']) {
      const http = await gql(strict, strictOrg.patient.token, query);
      expect(code(http), query).toBe('FORBIDDEN');
      expect(http.data ?? null).toBeNull();
      const ws = await overWs(strict, strictOrg.patient.token, query);
      expect(code(ws), query).toBe('FORBIDDEN');
      expect(ws.data ?? null).toBeNull();
    }
    expect((await gql(strict, strictOrg.patient.token, '{ __typename me { id } }')).data.__typename).toBe('Query');
  });
});

describe('GraphiQL', () => {
  const page = (app: TestApp) => fetch(app.url, { headers: { accept: 'text/html' } });

  it('is served at GET /graphql to browsers when GRAPHIQL=true', async () => {
    const res = await page(open);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/graphiql/i);
  });

  it('is not served when GRAPHIQL=false', async () => {
    const res = await page(strict);
    const body = await res.text();
    expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(body).not.toMatch(/graphiql/i);
  });
});

describe('error masking', () => {
  it('masks unexpected failures as INTERNAL_SERVER_ERROR without internals', async () => {
    const broken = await startApp();
    const borg = await seedOrg(broken);
    const c = await conversation(broken, borg.provider, [borg.patient]);
    broken.container.redis.commands.disconnect(); // a real failure below the service: Redis is gone
    const query = `mutation($c:ID!){ setTyping(conversationId:$c, typing:true) }`;
    for (const r of [await gql(broken, borg.patient.token, query, { c }), await overWs(broken, borg.patient.token, query, { c })]) {
      expect(r.errors).toEqual([{ message: 'Unexpected error.', path: ['setTyping'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
      expect(JSON.stringify(r)).not.toMatch(/redis|connection|stack|at .*\.ts/i);
    }
  });
});
