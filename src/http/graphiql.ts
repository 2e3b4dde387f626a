import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';
import { EXAMPLES, FIRST_CONVERSATION, exampleText } from '../graphql/examples.js';

/**
 * The bundled GraphiQL, served from this server only (no CDN): a small HTML page plus static
 * assets under /graphiql/, compressed (brotli or gzip, by Accept-Encoding) once, on first use, and
 * cached in memory. The 9 MB GraphiQL bundle is only loaded when the page is first asked for, so a
 * server that is never opened in a browser never holds it.
 *
 * The page's own script (graphiql-page.js) gives GraphiQL a fetcher that sends queries and
 * mutations over HTTP with the Headers tab's headers, and subscriptions over graphql-ws with the
 * Headers tab's Authorization as `connectionParams` (one socket per token), so the server's
 * authentication stays "token at connection_init" for every client alike.
 */
export interface GraphiQLPage {
  /** Serves the page or one of its assets; false when the request is not for GraphiQL. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
  br?: Promise<Buffer>;
  gz?: Promise<Buffer>;
}

const brotli = promisify(brotliCompress);
const gz = promisify(gzip);
const require = createRequire(import.meta.url);

/** Only same-origin requests; Monaco's workers are same-origin scripts. */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "worker-src 'self' blob:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const etagOf = (body: Buffer) => `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;

const asset = (type: string, body: string | Buffer): Asset => {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  return { type, body: buf, etag: etagOf(buf) };
};

async function loadAssets(): Promise<Map<string, Asset>> {
  const g = await import('@graphql-yoga/render-graphiql/graphiql');
  const js = 'text/javascript; charset=utf-8';
  const favicon = Buffer.from(g.favicon.slice(g.favicon.indexOf(',') + 1), 'base64');
  const page = await readFile(new URL('./graphiql-page.js', import.meta.url)); // copied next to the compiled module by `npm run build`;
  const graphqlWs = await readFile(join(dirname(require.resolve('graphql-ws/package.json')), 'umd/graphql-ws.min.js'));
  return new Map([
    ['graphiql.js', asset(js, g.js)],
    ['graphiql.css', asset('text/css; charset=utf-8', g.css)],
    ['editor.worker.js', asset(js, g.editorWorkerService)],
    ['json.worker.js', asset(js, g.jsonWorker)],
    ['graphql.worker.js', asset(js, g.graphqlWorker)],
    ['graphql-ws.js', asset(js, graphqlWs)],
    ['page.js', asset(js, page)],
    ['favicon.ico', asset('image/x-icon', favicon)],
  ]);
}

const compressed = (a: Asset, encoding: 'br' | 'gzip'): Promise<Buffer> => {
  if (encoding === 'br') {
    // quality 5: about as small as gzip -9 plus a fifth, in a fraction of quality 11's time
    a.br ??= brotli(a.body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 5, [zlib.BROTLI_PARAM_SIZE_HINT]: a.body.length } });
    return a.br;
  }
  a.gz ??= gz(a.body, { level: 6 });
  return a.gz;
};

const acceptsHtml = (req: IncomingMessage) => req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');

const pickEncoding = (req: IncomingMessage): 'br' | 'gzip' | undefined => {
  const accept = String(req.headers['accept-encoding'] ?? '');
  if (/\bbr\b/.test(accept)) return 'br';
  if (/\bgzip\b/.test(accept)) return 'gzip';
  return undefined;
};

/** JSON inside <script type="application/json">: `<` escaped so no text can close the tag. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

export function renderPage(endpoint: string, title: string, version: (name: string) => string): string {
  const config = {
    endpoint,
    title,
    firstConversation: FIRST_CONVERSATION,
    examples: EXAMPLES.map((e) => ({ name: e.name, query: exampleText(e), variables: e.variables })),
  };
  const src = (name: string) => `/graphiql/${name}?v=${version(name)}`;
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${title}</title>
    <link rel="icon" href="${src('favicon.ico')}" />
    <link rel="stylesheet" href="${src('graphiql.css')}" />
    <style>
      /* every example tab in sight: the tab bar wraps instead of scrolling with a hidden scrollbar */
      .graphiql-session-header { height: auto !important; min-height: var(--session-header-height); align-items: flex-start !important; }
      .graphiql-tabs { flex-wrap: wrap !important; row-gap: 4px; }
    </style>
  </head>
  <body class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root" style="height: 100vh"></div>
    <script type="application/json" id="wardline-graphiql">${scriptJson(config)}</script>
    <script src="${src('page.js')}"></script>
    <script src="${src('graphql-ws.js')}"></script>
    <script src="${src('graphiql.js')}"></script>
  </body>
</html>
`;
}

export function createGraphiQLPage(opts: { endpoint: string; title: string }): GraphiQLPage {
  let assets: Promise<Map<string, Asset>> | undefined;
  const load = () => {
    assets ??= loadAssets().then((m) => {
      // warm the brotli copies (what browsers ask for) in the background: the assets come right after the page
      for (const a of m.values()) if (a.body.length > 1024) void compressed(a, 'br').catch(() => {});
      return m;
    });
    return assets;
  };

  const send = async (req: IncomingMessage, res: ServerResponse, a: Asset, headers: Record<string, string>) => {
    const base = { 'content-type': a.type, etag: a.etag, vary: 'accept-encoding', 'x-content-type-options': 'nosniff', ...headers };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, base).end();
      return;
    }
    const encoding = a.body.length > 1024 ? pickEncoding(req) : undefined;
    const body = encoding ? await compressed(a, encoding) : a.body;
    res.writeHead(200, { ...base, ...(encoding ? { 'content-encoding': encoding } : {}), 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const fail = (res: ServerResponse, err: unknown) => {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`GraphiQL failed to load: ${err instanceof Error ? err.message : String(err)}\n`);
  };

  return {
    handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === opts.endpoint && acceptsHtml(req)) {
        load()
          .then((m) => {
            const html = renderPage(opts.endpoint, opts.title, (name) => m.get(name)?.etag.slice(1, 9) ?? '0');
            return send(req, res, asset('text/html; charset=utf-8', html), {
              'content-security-policy': CSP,
              'cache-control': 'no-cache',
              'referrer-policy': 'no-referrer',
            });
          })
          .catch((err) => fail(res, err));
        return true;
      }
      if (!url.pathname.startsWith('/graphiql/') || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
      const name = url.pathname.slice('/graphiql/'.length);
      load()
        .then((m) => {
          const a = m.get(name);
          if (!a) {
            res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
            return;
          }
          // a versioned URL never changes; an unversioned one is revalidated
          const cache = url.searchParams.get('v') === a.etag.slice(1, 9) ? 'public, max-age=31536000, immutable' : 'no-cache';
          return send(req, res, a, { 'cache-control': cache });
        })
        .catch((err) => fail(res, err));
      return true;
    },
  };
}
