import { request } from 'node:http';
import { describe, expect } from 'vitest';
import WebSocket from 'ws';
import { gql } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import type { TestApp } from '../harness/start-app.js';
import { SEND, conversation } from '../messaging/ops.js';

const LISTED = 'https://app.example.org';
const it = withApp({ ALLOWED_ORIGINS: `${LISTED}, https://admin.example.org`, HTTP_MAX_BODY_BYTES: String(1024 * 1024) });
const openIt = withApp({ ALLOWED_ORIGINS: '*' });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Bytes of the request body written when the answer arrived. */
  sent: number;
  ms: number;
}

/**
 * A raw HTTP request with node:http (fetch hides preflight headers and cannot stream a body
 * slowly). `chunks`: the body is streamed chunked, a chunk per turn, until the answer arrives.
 */
function send(
  app: TestApp,
  opts: {
    method?: string;
    path?: string;
    headers?: Record<string, string | number>;
    body?: string | Buffer;
    chunks?: { size: number; total: number };
  },
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = request(
      { host: '127.0.0.1', port: app.port, path: opts.path ?? '/graphql', method: opts.method ?? 'POST', headers: opts.headers },
      (res) => {
        answered = true;
        const at = sent;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, sent: at, ms: performance.now() - started }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err); // a reset after the answer is the server cutting the upload off
    });
    if (opts.chunks) {
      const chunk = Buffer.alloc(opts.chunks.size, 0x20);
      const total = opts.chunks.total;
      const pump = () => {
        if (answered || req.destroyed) return;
        if (sent >= total) return void req.end();
        sent += chunk.length;
        if (req.write(chunk)) setTimeout(pump, 1);
        else req.once('drain', pump);
      };
      req.write('{"query":"{ me { id } }","pad":"');
      pump();
    } else req.end(opts.body);
  });
}

const json = (a: Answer) => JSON.parse(a.body) as { data?: any; errors?: Array<{ message: string; extensions?: { code?: string } }> };

/** The message ids in a conversation, as the provider sees them. */
async function messageIds(app: TestApp, token: string, c: string): Promise<string[]> {
  const r = await gql(app, token, `query($c:ID!){ conversation(id:$c){ messages(first:100){ edges { node { id } } } } }`, { c });
  return r.data.conversation.messages.edges.map((e: { node: { id: string } }) => e.node.id);
}

describe('CORS from ALLOWED_ORIGINS', () => {
  const preflight = (app: TestApp, origin: string) =>
    send(app, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });

  it('answers a preflight from a listed origin with that origin, never *', async ({ app }) => {
    const a = await preflight(app, LISTED);
    expect(a.status).toBe(204);
    expect(a.headers['access-control-allow-origin']).toBe(LISTED);
    expect(a.headers['access-control-allow-credentials']).toBe('true');
    expect(a.headers['access-control-allow-methods']).toMatch(/POST/);
    expect(a.headers['access-control-allow-headers']).toMatch(/authorization/);
    expect(a.headers.vary).toMatch(/Origin/);
  });

  it('gives a preflight from an unlisted origin no allow headers', async ({ app }) => {
    const a = await preflight(app, 'https://evil.example');
    expect(a.headers['access-control-allow-origin']).toBeUndefined();
    expect(a.headers['access-control-allow-credentials']).toBeUndefined();
    expect(a.headers['access-control-allow-headers']).toBeUndefined();
    expect(a.headers['access-control-allow-methods']).toBeUndefined();
  });

  it('refuses a request from an unlisted origin with 403 and writes nothing; servers without Origin are unaffected', async ({
    app,
    org,
  }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const body = JSON.stringify({ query: SEND, variables: { c, b: 'from evil' } });
    const headers = { 'content-type': 'application/json', authorization: org.provider.token };
    const evil = await send(app, { headers: { ...headers, origin: 'https://evil.example' }, body });
    expect(evil.status).toBe(403);
    expect(json(evil).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    expect(await messageIds(app, org.provider.token, c)).toEqual([]);

    const listed = await send(app, { headers: { ...headers, origin: LISTED }, body });
    expect(listed.status).toBe(200);
    expect(listed.headers['access-control-allow-origin']).toBe(LISTED);
    expect(json(listed).data.sendMessage.body).toBe('from evil');
    const server = await send(app, { headers, body });
    expect(server.status).toBe(200);
    expect(server.headers['access-control-allow-origin']).toBeUndefined();
    expect(await messageIds(app, org.provider.token, c)).toHaveLength(2);
  });

  it("accepts the server's own origin (GraphiQL served from here), without listing it", async ({ app, org }) => {
    const a = await send(app, {
      headers: { 'content-type': 'application/json', authorization: org.patient.token, origin: `http://127.0.0.1:${app.port}` },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(a.status).toBe(200);
    expect(json(a).data.me.id).toBe(org.patient.id);
  });
});

describe('the WebSocket upgrade', () => {
  /** The HTTP status of a WebSocket upgrade with this Origin (101 when accepted). */
  const upgrade = (app: TestApp, origin: string) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(app.wsUrl, 'graphql-transport-ws', { headers: { origin } });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => {
        ws.close(1000);
        resolve(101);
      });
      ws.once('error', reject);
    });

  it('follows the same list: listed and own origins are accepted, others get 403', async ({ app }) => {
    expect(await upgrade(app, LISTED)).toBe(101);
    expect(await upgrade(app, `http://127.0.0.1:${app.port}`)).toBe(101);
    expect(await upgrade(app, 'https://evil.example')).toBe(403);
  });
});

describe('CORS with ALLOWED_ORIGINS=*', () => {
  openIt('answers any origin with * and never with credentials', async ({ app }) => {
    const a = await send(app, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://anywhere.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(a.status).toBe(204);
    expect(a.headers['access-control-allow-origin']).toBe('*');
    expect(a.headers['access-control-allow-credentials']).toBeUndefined();
  });
});

describe('request media types', () => {
  it('refuses forms, multipart, text and raw GraphQL with 415 and a typed error, and writes nothing', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const query = `mutation { sendMessage(input:{conversationId:"${c}", body:"csrf"}) { id } }`;
    const boundary = 'XyZ';
    const bodies: Array<[string, string]> = [
      ['application/x-www-form-urlencoded', new URLSearchParams({ query }).toString()],
      [
        `multipart/form-data; boundary=${boundary}`,
        `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query })}\r\n--${boundary}--\r\n`,
      ],
      ['text/plain', JSON.stringify({ query })],
      ['application/graphql', query],
    ];
    for (const [type, body] of bodies) {
      for (const origin of [undefined, LISTED]) {
        const a = await send(app, {
          headers: { 'content-type': type, authorization: org.provider.token, ...(origin ? { origin } : {}) },
          body,
        });
        expect(a.status, type).toBe(415);
        expect(json(a).errors?.[0]?.extensions?.code, type).toBe('BAD_USER_INPUT');
        expect(json(a).errors?.[0]?.message).toMatch(/application\/json/);
      }
    }
    const none = await send(app, { headers: { authorization: org.provider.token }, body: JSON.stringify({ query }) });
    expect(none.status).toBe(415);
    expect(await messageIds(app, org.provider.token, c)).toEqual([]);
  });

  it('accepts application/json (with a charset) and application/graphql+json', async ({ app, org }) => {
    for (const type of ['application/json; charset=utf-8', 'application/graphql+json']) {
      const a = await send(app, {
        headers: { 'content-type': type, authorization: org.patient.token },
        body: JSON.stringify({ query: '{ me { id } }' }),
      });
      expect(a.status, type).toBe(200);
      expect(json(a).data.me.id).toBe(org.patient.id);
    }
  });

  it('never executes a mutation sent with GET, while GET queries work', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const mutation = `mutation { sendMessage(input:{conversationId:"${c}", body:"via get"}) { id } }`;
    const get = await send(app, {
      method: 'GET',
      path: `/graphql?query=${encodeURIComponent(mutation)}`,
      headers: { authorization: org.provider.token, accept: 'application/json' },
    });
    expect(get.status).toBe(405);
    expect(json(get).errors?.[0]?.message).toMatch(/mutation/i);
    expect(await messageIds(app, org.provider.token, c)).toEqual([]);
    const query = await send(app, {
      method: 'GET',
      path: `/graphql?query=${encodeURIComponent('{ me { id } }')}`,
      headers: { authorization: org.patient.token, accept: 'application/json' },
    });
    expect(query.status).toBe(200);
    expect(json(query).data.me.id).toBe(org.patient.id);
  });

  it('answers a body that is not a JSON object with 400 BAD_USER_INPUT', async ({ app, org }) => {
    for (const body of ['{"query":', '[1,2]', '"x"']) {
      const a = await send(app, { headers: { 'content-type': 'application/json', authorization: org.patient.token }, body });
      expect(a.status, body).toBe(400);
      expect(json(a).errors?.[0]?.extensions?.code, body).toBe('BAD_USER_INPUT');
    }
  });
});

describe('body limit (HTTP_MAX_BODY_BYTES)', () => {
  it('answers a 5 MB body announced by Content-Length with 413 at once, before reading it', async ({ app, org }) => {
    const body = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const a = await send(app, {
      headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: org.patient.token },
      body,
    });
    expect(a.status).toBe(413);
    expect(json(a).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(json(a).errors?.[0]?.message).toMatch(/HTTP_MAX_BODY_BYTES/);
    expect(a.ms).toBeLessThan(2_000);
  });

  it('cuts off a chunked body once it passes the limit, without reading the rest', async ({ app, org }) => {
    const total = 20 * 1024 * 1024;
    const a = await send(app, {
      headers: { 'content-type': 'application/json', authorization: org.patient.token },
      chunks: { size: 64 * 1024, total },
    });
    expect(a.status).toBe(413);
    expect(a.sent).toBeLessThan(total / 2);
    // the instance still serves
    expect((await gql(app, org.patient.token, '{ me { id } }')).data.me.id).toBe(org.patient.id);
  });

  it('gives service tokens the larger HTTP_MAX_BODY_BYTES_SERVICE (bulk and batch bodies), and only them', async ({ app, org }) => {
    const body = JSON.stringify({ query: '{ me { id } }', extensions: { pad: 'x'.repeat(3 * 1024 * 1024) } });
    const post = (token: string) =>
      send(app, { headers: { 'content-type': 'application/json', authorization: token, 'content-length': Buffer.byteLength(body) }, body });
    const service = await post(org.service.token);
    expect(service.status).toBe(200);
    expect(json(service).data.me.id).toBe(org.service.id);
    const patient = await post(org.patient.token);
    expect(patient.status).toBe(413);
    expect(json(patient).errors?.[0]?.message).toMatch(/HTTP_MAX_BODY_BYTES\b/);
    // a forged "service" token is not a service token
    expect((await post('Bearer not-a-token')).status).toBe(413);
  });

  it('executes a body just under the limit', async ({ app, org }) => {
    const pad = 'x'.repeat(1024 * 1024 - 200);
    const body = JSON.stringify({ query: '{ me { id } }', extensions: { pad } });
    expect(body.length).toBeLessThanOrEqual(1024 * 1024);
    const a = await send(app, { headers: { 'content-type': 'application/json', authorization: org.patient.token }, body });
    expect(a.status).toBe(200);
    expect(json(a).data.me.id).toBe(org.patient.id);
  });
});
