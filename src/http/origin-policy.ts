import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config.js';

/**
 * True when a browser `Origin` may use the API: listed in ALLOWED_ORIGINS (or the list is `*`), or
 * the page's own origin (its host is the request's Host: GraphiQL served by this server).
 * Requests without an Origin (servers, native apps) never reach this check.
 */
export function originAllowed(origin: string, host: string | undefined, allowed: Config['http']['allowedOrigins']): boolean {
  if (allowed === '*' || allowed.includes(origin)) return true;
  if (!host) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false; // `null` (sandboxed frames, file://) and other non-URLs
  }
}

/** Request media types yoga parses as a JSON body; everything else (forms, multipart, text) is refused. */
const JSON_TYPES = new Set(['application/json', 'application/graphql+json']);

const ERROR_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/** How long a connection whose body went over the limit is read and dropped after the 413. */
const LINGER_MS = 1_000;

/** Answers with a GraphQL error body; `close` ends the connection instead of reading an unwanted body. */
const refuse = (res: ServerResponse, status: number, code: string, message: string, close = false) => {
  if (res.headersSent) return;
  res.writeHead(status, close ? { ...ERROR_HEADERS, connection: 'close' } : ERROR_HEADERS);
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
};

/**
 * The HTTP front of `/graphql`, before yoga: origin policy (CORS), request media type and body size.
 * `admit` answers refusals and preflights itself; otherwise it calls `next` (for a POST, with the
 * body already read within the limit and parsed, so yoga never buffers more than the limit).
 */
export interface HttpPolicy {
  admit(req: IncomingMessage, res: ServerResponse, next: () => void): void;
}

export function createHttpPolicy(
  config: Config['http'],
  /** True when the request carries a valid service token (verified, cached): it gets the larger body limit. */
  isService: (authorization: string | undefined) => Promise<boolean> = async () => false,
): HttpPolicy {
  const { allowedOrigins } = config;
  const tooLarge = (limit: number, service: boolean) =>
    `Request body larger than ${limit} bytes (${service ? 'HTTP_MAX_BODY_BYTES_SERVICE' : 'HTTP_MAX_BODY_BYTES'}).`;

  /** Reads the body up to the limit; answers 413 as soon as it is exceeded and stops reading. */
  const readBody = (req: IncomingMessage, res: ServerResponse, next: () => void, maxBodyBytes: number, service: boolean) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        done = true;
        req.off('data', onData);
        req.pause();
        chunks.length = 0;
        refuse(res, 413, 'BAD_USER_INPUT', tooLarge(maxBodyBytes, service));
        // The client may still be sending. Closing at once would reset the connection, and a client
        // still writing would then lose the answer: drop what arrives for a moment (bounded in time
        // and bytes) so it reads the 413, then close the connection.
        res.once('finish', () => {
          const socket = req.socket;
          let dropped = 0;
          const timer = setTimeout(() => socket.destroy(), LINGER_MS);
          socket.once('close', () => clearTimeout(timer));
          req.on('data', (c: Buffer) => {
            dropped += c.length;
            if (dropped > maxBodyBytes) socket.destroy();
          });
          req.resume();
        });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('error', () => {
      done = true;
    });
    req.once('end', () => {
      if (done) return;
      done = true;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
      } catch {
        return refuse(res, 400, 'BAD_USER_INPUT', 'Request body is not valid JSON.');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length === 0)
        return refuse(res, 400, 'BAD_USER_INPUT', 'Request body must be a JSON object with a `query`.');
      // @whatwg-node/server takes an already-read body from `req.body` (as body parsers leave it)
      (req as IncomingMessage & { body?: unknown }).body = body;
      next();
    });
  };

  return {
    admit(req, res, next) {
      const origin = req.headers.origin;
      if (origin !== undefined) {
        if (allowedOrigins !== '*') res.setHeader('vary', 'Origin');
        if (!originAllowed(origin, req.headers.host, allowedOrigins)) {
          // a preflight gets no allow headers (the browser then refuses); anything else is refused here
          if (req.method === 'OPTIONS') return void res.writeHead(204).end();
          return refuse(res, 403, 'FORBIDDEN', 'This origin is not allowed (ALLOWED_ORIGINS).', true);
        }
        if (allowedOrigins === '*') res.setHeader('access-control-allow-origin', '*');
        else {
          res.setHeader('access-control-allow-origin', origin);
          res.setHeader('access-control-allow-credentials', 'true');
        }
        if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
          const asked = req.headers['access-control-request-headers'];
          return void res
            .writeHead(204, {
              'access-control-allow-methods': 'GET, POST, OPTIONS',
              'access-control-allow-headers': asked || 'authorization, content-type, accept',
              'access-control-max-age': '600',
            })
            .end();
        }
      }
      const length = Number(req.headers['content-length'] ?? 0);
      const authorization = req.headers.authorization;
      // only a request that may exceed the common limit pays the (cached) token check
      if (authorization && (length > config.maxBodyBytes || req.headers['content-length'] === undefined))
        void isService(authorization).then(
          (service) => admitBody(req, res, next, length, service),
          () => admitBody(req, res, next, length, false),
        );
      else admitBody(req, res, next, length, false);
    },
  };

  function admitBody(req: IncomingMessage, res: ServerResponse, next: () => void, length: number, service: boolean) {
    const limit = service ? config.maxBodyBytesService : config.maxBodyBytes;
    if (length > limit) return refuse(res, 413, 'BAD_USER_INPUT', tooLarge(limit, service), true);
    if (req.method !== 'POST') return next();
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!JSON_TYPES.has(type))
      return refuse(res, 415, 'BAD_USER_INPUT', 'Send operations as POST with Content-Type: application/json (or GET for queries).', true);
    readBody(req, res, next, limit, service);
  }
}
