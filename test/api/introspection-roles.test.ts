import { afterEach, describe, expect } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { type GqlResponse, gql } from '../harness/clients.js';
import { TEST_DATABASE_URL, TEST_JWT_SECRET } from '../harness/env.js';
import { withApp } from '../harness/fixtures.js';
import type { TestApp } from '../harness/start-app.js';
import { type Raw, openRaw } from '../protocol/raw.js';

const it = withApp({ INTROSPECTION: 'admin, service' });

const INTROSPECT = '{ __schema { queryType { name } } }';
const HIDDEN = 'query { ...F } fragment F on Query { __type(name: "Query") { name } }';
const code = (r: { errors?: GqlResponse['errors'] }) => r.errors?.[0]?.extensions?.code;

const sockets: Raw[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.ws.close(1000);
});

async function overWs(app: TestApp, token: string, query: string) {
  const raw = await openRaw(app);
  sockets.push(raw);
  await raw.init(token);
  raw.send({ id: '1', type: 'subscribe', payload: { query } });
  const f = await raw.next((x) => x.id === '1' && (x.type === 'next' || x.type === 'error'));
  return f.type === 'error' ? { errors: f.payload as GqlResponse['errors'] } : (f.payload as Omit<GqlResponse, 'status'>);
}

describe('INTROSPECTION=admin,service', () => {
  it('lets admin and service tokens introspect on HTTP and WebSocket', async ({ app, org }) => {
    for (const u of [org.admin, org.service]) {
      for (const query of [INTROSPECT, HIDDEN]) {
        const http = await gql(app, u.token, query);
        expect(http.errors, `${u.role} ${query}`).toBeUndefined();
        const ws = await overWs(app, u.token, query);
        expect(ws.errors, `${u.role} ${query}`).toBeUndefined();
      }
      expect((await gql(app, u.token, INTROSPECT)).data.__schema.queryType.name).toBe('Query');
    }
  });

  it('refuses patients and providers with FORBIDDEN on HTTP and WebSocket, also inside fragments', async ({ app, org }) => {
    for (const u of [org.patient, org.provider]) {
      for (const query of [INTROSPECT, HIDDEN]) {
        const http = await gql(app, u.token, query);
        expect(code(http), `${u.role} ${query}`).toBe('FORBIDDEN');
        expect(http.errors?.[0]?.message).toMatch(/admin, service/);
        expect(http.data ?? null).toBeNull();
        const ws = await overWs(app, u.token, query);
        expect(code(ws), `${u.role} ${query}`).toBe('FORBIDDEN');
        expect(ws.data ?? null).toBeNull();
      }
      // ordinary operations and __typename are unaffected
      const ok = await gql(app, u.token, '{ __typename me { id } }');
      expect(ok.data).toEqual({ __typename: 'Query', me: { id: u.id } });
    }
  });

  it('refuses unauthenticated introspection with UNAUTHENTICATED', async ({ app }) => {
    const r = await gql(app, undefined, INTROSPECT);
    expect(code(r)).toBe('UNAUTHENTICATED');
    expect(r.data ?? null).toBeNull();
  });
});

describe('INTROSPECTION configuration', () => {
  const base = { DATABASE_URL: TEST_DATABASE_URL, JWT_SECRET: TEST_JWT_SECRET };
  const load = (env: Record<string, string>) => loadConfig({ ...base, ...env });

  it('defaults to admin and service in production and to everyone elsewhere', () => {
    expect(load({ NODE_ENV: 'production' }).introspection).toEqual(['admin', 'service']);
    expect(load({ NODE_ENV: 'development' }).introspection).toBe('all');
    expect(load({ NODE_ENV: 'test' }).introspection).toBe('all');
  });

  it('keeps true and false, and takes a list of roles', () => {
    expect(load({ NODE_ENV: 'production', INTROSPECTION: 'true' }).introspection).toBe('all');
    expect(load({ INTROSPECTION: 'false' }).introspection).toEqual([]);
    expect(load({ INTROSPECTION: 'provider,admin' }).introspection).toEqual(['provider', 'admin']);
    expect(() => load({ INTROSPECTION: 'admin,root' })).toThrow(ConfigError);
    expect(() => load({ INTROSPECTION: 'admin,root' })).toThrow(/INTROSPECTION: expected true, false, or comma-separated roles/);
  });

  it('reads ALLOWED_ORIGINS, with WS_ALLOWED_ORIGINS as an alias, for HTTP and WebSocket alike', () => {
    const c = load({ ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443' });
    expect(c.http.allowedOrigins).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(c.ws.allowedOrigins).toEqual(c.http.allowedOrigins);
    expect(load({ WS_ALLOWED_ORIGINS: 'https://old.example' }).http.allowedOrigins).toEqual(['https://old.example']);
    expect(load({ ALLOWED_ORIGINS: 'https://new.example', WS_ALLOWED_ORIGINS: 'https://old.example' }).ws.allowedOrigins).toEqual([
      'https://new.example',
    ]);
    expect(load({}).http.allowedOrigins).toBe('*');
    expect(() => load({ ALLOWED_ORIGINS: 'https://a.example/app' })).toThrow(/ALLOWED_ORIGINS: expected \* or comma-separated origins/);
    expect(load({}).http.maxBodyBytes).toBe(1024 * 1024);
    expect(() => load({ HTTP_MAX_BODY_BYTES: '10' })).toThrow(/HTTP_MAX_BODY_BYTES/);
  });
});
