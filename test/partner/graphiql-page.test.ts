import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../src/graphql/examples.js';
import { type TestApp, startApp } from '../harness/start-app.js';

/** The GraphiQL page over plain HTTP: small, compressed, same-origin only, cacheable. */
describe('GraphiQL page and assets', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(() => app.stop());

  const get = (path: string, headers: Record<string, string> = {}) => fetch(new URL(path, app.url), { headers });

  it('serves a small page whose scripts and styles come from this server, with a same-origin CSP', async () => {
    const res = await get('/graphql', { accept: 'text/html' });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html.length).toBeLessThan(40_000);
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(urls.length).toBeGreaterThan(3);
    for (const u of urls) expect(u).toMatch(/^\/graphiql\//);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    for (const e of EXAMPLES) expect(html).toContain(`"name":"${e.name}"`);
  });

  it('compresses assets (brotli or gzip) and lets versioned ones be cached', async () => {
    const html = await (await get('/graphql', { accept: 'text/html' })).text();
    const js = /src="(\/graphiql\/graphiql\.js\?v=[^"]+)"/.exec(html)?.[1] as string;
    // fetch decodes: ask for the raw sizes through the headers only
    for (const encoding of ['br', 'gzip']) {
      const res = await get(js, { 'accept-encoding': encoding });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-encoding')).toBe(encoding);
      expect(Number(res.headers.get('content-length'))).toBeLessThan(2_000_000);
      expect(res.headers.get('cache-control')).toContain('immutable');
      await res.arrayBuffer();
    }
    const plain = await get(js, { 'accept-encoding': 'identity' });
    expect(Number(plain.headers.get('content-length'))).toBeGreaterThan(4_000_000);
    await plain.arrayBuffer();
    const again = await get(js, { 'if-none-match': plain.headers.get('etag') as string });
    expect(again.status).toBe(304);
    expect((await get('/graphiql/nothing.js')).status).toBe(404);
  });

  it('is not served when GRAPHIQL=false', async () => {
    const off = await startApp({ env: { GRAPHIQL: 'false' } });
    try {
      const res = await fetch(new URL('/graphiql/graphiql.js', off.url));
      expect(res.status).not.toBe(200);
      const page = await fetch(off.url, { headers: { accept: 'text/html' } });
      expect(await page.text()).not.toContain('wardline-graphiql');
    } finally {
      await off.stop();
    }
  });
});
