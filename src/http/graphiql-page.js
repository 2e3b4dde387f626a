// Wardline's GraphiQL page script (runs in the browser; served as /graphiql/page.js).
//
// It gives GraphiQL its fetcher:
// - queries and mutations go over HTTP with the Headers tab's headers;
// - subscriptions go over graphql-ws (graphql-transport-ws), with the Headers tab's Authorization
//   sent as connectionParams at connection_init, as every other client does. One socket per token:
//   running with another token opens another socket (the old one closes once its subscriptions end).
//   The socket stays open while the page is open, so the token's user counts as online here.
// - errors come back as GraphQL errors with a readable message (close code and what to do), never
//   as a bare browser event.
// - a tab whose Headers have no Authorization uses the last token this page ran with; that token
//   is also filled into the example tabs of a new window.
// - a variable whose value is the FIRST_CONVERSATION placeholder is replaced by the viewer's
//   newest conversation id; the response's extensions say so.
(() => {
  const cfg = JSON.parse(document.getElementById('wardline-graphiql').textContent);
  const AUTH_KEY = 'wardline:authorization';
  const endpointUrl = new URL(cfg.endpoint, location.href).toString();
  const wsUrl = endpointUrl.replace(/^http/, 'ws');
  const TOKEN_PLACEHOLDER = 'Bearer <paste a token here>';

  self.MonacoEnvironment = {
    globalAPI: false,
    getWorkerUrl: (_moduleId, label) =>
      `/graphiql/${{ editorWorkerService: 'editor.worker.js', json: 'json.worker.js', graphql: 'graphql.worker.js' }[label] ?? 'editor.worker.js'}`,
  };

  const savedAuth = () => {
    try {
      return localStorage.getItem(AUTH_KEY) || undefined;
    } catch {
      return undefined;
    }
  };
  const saveAuth = (auth) => {
    try {
      localStorage.setItem(AUTH_KEY, auth);
    } catch {}
  };

  const headersOf = (h) => {
    if (!h) return {};
    if (typeof h === 'string') {
      try {
        return JSON.parse(h) || {};
      } catch {
        return {};
      }
    }
    return h;
  };
  const authIn = (headers) => {
    for (const [k, v] of Object.entries(headers))
      if (k.toLowerCase() === 'authorization' && typeof v === 'string' && v.trim()) return v.trim();
    return undefined;
  };
  const isPlaceholder = (auth) => auth === TOKEN_PLACEHOLDER || /<.*>/.test(auth);

  const tokenHint = (auth) =>
    !auth
      ? 'No token: put {"Authorization": "Bearer <token>"} in the Headers tab (bottom panel). `npm start` prints demo tokens; `npm run token -- --sub demo-provider --org demo --role provider` mints one.'
      : isPlaceholder(auth)
        ? 'The Headers tab still holds the placeholder: replace <paste a token here> with a token that `npm start` printed (or `npm run token` minted).'
        : 'The token was refused: expired, signed with another JWT_SECRET, or malformed. Mint a fresh one with `npm run token -- --sub demo-provider --org demo --role provider`.';

  const closeHints = {
    1001: 'The server is shutting down or restarting: run the operation again in a moment.',
    1006: 'The connection dropped (server stopped or unreachable): run the operation again.',
    4400: 'The server could not read a message.',
    4406: 'The server speaks graphql-transport-ws only.',
    4408: 'The connection was not initialised in time.',
    4429: 'The connection was initialised twice.',
    4499: 'The server was too slow to reach, or this client too slow to read: run again.',
  };

  /** Anything graphql-ws or fetch can fail with, as GraphQL errors a person can act on. */
  const readable = (e, auth) => {
    if (Array.isArray(e)) return e; // GraphQL errors from the server, as they are
    if (e && typeof e.code === 'number') {
      const hint = e.code === 4403 || e.code === 4401 ? tokenHint(auth) : (closeHints[e.code] ?? '');
      const reason = e.reason ? ` (${e.reason})` : '';
      return [
        {
          message: `The WebSocket closed with ${e.code}${reason}. ${hint}`.trim(),
          extensions: { code: 'WEBSOCKET_CLOSED', closeCode: e.code },
        },
      ];
    }
    if (e instanceof Error) return [{ message: e.message }];
    if (e && e.type === 'error')
      return [
        { message: `Could not open a WebSocket to ${wsUrl}: is the server running, and does WS_ALLOWED_ORIGINS allow ${location.origin}?` },
      ];
    return [{ message: String(e) }];
  };

  /** One graphql-ws client per token. */
  const sockets = new Map();
  const socketFor = (auth) => {
    const key = auth ?? '';
    let s = sockets.get(key);
    if (!s) {
      let markReady;
      s = { active: 0, ready: new Promise((r) => (markReady = r)) };
      s.client = graphqlWs.createClient({
        url: wsUrl,
        connectionParams: auth ? { authorization: auth } : {},
        lazy: !auth, // with a token: stay connected while the page is open (presence sees this window)
        retryAttempts: 0,
        keepAlive: 20_000,
        onNonLazyError: () => {}, // reported by the subscription that meets it
        on: { connected: () => markReady(), closed: () => markReady() },
      });
      if (!auth) markReady();
      sockets.set(key, s);
    }
    for (const [k, other] of sockets) {
      if (k !== key && other.active === 0) {
        other.client.dispose();
        sockets.delete(k);
      }
    }
    return s;
  };

  const operationOf = (params, opts) => {
    const defs = (opts?.documentAST?.definitions ?? []).filter((d) => d.kind === 'OperationDefinition');
    const def = params.operationName ? defs.find((d) => d.name?.value === params.operationName) : defs[0];
    if (def) return def.operation;
    const text = String(params.query ?? '').replace(/#[^\n]*/g, '');
    const re = /\b(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g;
    for (let m = re.exec(text); m; m = re.exec(text)) if (!params.operationName || m[2] === params.operationName) return m[1];
    return 'query';
  };

  const overHttp = async (params, headers) => {
    let res;
    try {
      res = await fetch(endpointUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
        body: JSON.stringify(params),
        credentials: 'same-origin',
      });
    } catch (e) {
      return { errors: [{ message: `Could not reach ${endpointUrl} (${e.message}): is the server running?` }] };
    }
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      return { errors: [{ message: `HTTP ${res.status} ${res.statusText}: ${text.slice(0, 300)}` }] };
    }
  };

  /** Replaces FIRST_CONVERSATION variables; returns the note to show, or errors. */
  const fillVariables = async (params, headers) => {
    const vars = params.variables ?? {};
    const names = Object.keys(vars).filter((k) => vars[k] === cfg.firstConversation);
    if (names.length === 0) return { params };
    const r = await overHttp({ query: 'query NewestConversation { conversations(first: 1) { edges { node { id } } } }' }, headers);
    if (r.errors?.length) return { errors: r.errors };
    const id = r.data?.conversations?.edges?.[0]?.node?.id;
    if (!id) return { errors: [{ message: 'You are in no conversation yet: create one (createConversation), or use a demo token.' }] };
    const variables = { ...vars };
    for (const n of names) variables[n] = id;
    return { params: { ...params, variables }, note: `${names.join(', ')}: "${cfg.firstConversation}" was replaced by ${id}` };
  };
  const withNote = (result, note) => (note ? { ...result, extensions: { ...result.extensions, graphiql: note } } : result);

  const subscribeOverWs = (socket, params, auth, note) => ({
    subscribe(observer) {
      const sink = typeof observer === 'function' ? { next: observer } : observer;
      let done = false;
      let first = true;
      socket.active++;
      const finish = () => {
        if (done) return false;
        done = true;
        socket.active--;
        return true;
      };
      const dispose = socket.client.subscribe(params, {
        next: (v) => {
          sink.next?.(first ? withNote(v, note) : v);
          first = false;
        },
        error: (e) => {
          if (!finish()) return;
          sink.next?.({ errors: readable(e, auth) });
          sink.complete?.();
        },
        complete: () => {
          if (finish()) sink.complete?.();
        },
      });
      return {
        unsubscribe: () => {
          finish();
          dispose();
        },
      };
    },
  });

  const failed = (errors) => ({
    subscribe(observer) {
      const sink = typeof observer === 'function' ? { next: observer } : observer;
      // after GraphiQL has taken the subscription (a synchronous end would leave its stop button on)
      const t = setTimeout(() => {
        sink.next?.({ errors });
        sink.complete?.();
      }, 0);
      return { unsubscribe: () => clearTimeout(t) };
    },
  });

  const fetcher = (graphQLParams, opts) => {
    const headers = {};
    for (const [k, v] of Object.entries(headersOf(opts?.headers))) if (v != null) headers[k] = String(v);
    let auth = authIn(headers);
    if (auth && !isPlaceholder(auth)) saveAuth(auth);
    if (!auth || isPlaceholder(auth)) {
      const saved = savedAuth();
      if (saved) {
        for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
        headers.Authorization = saved;
        auth = saved;
      }
    }
    const params = {
      query: graphQLParams.query,
      operationName: graphQLParams.operationName ?? undefined,
      variables: graphQLParams.variables ?? undefined,
    };
    const type = operationOf(params, opts);
    if (type === 'subscription') {
      if (!auth || isPlaceholder(auth)) return failed([{ message: tokenHint(auth) }]);
      return (async () => {
        const filled = await fillVariables(params, headers);
        if (filled.errors) return failed(filled.errors);
        return subscribeOverWs(socketFor(auth), filled.params, auth, filled.note);
      })();
    }
    return (async () => {
      // with a token, connect first: the viewer is online here before a presence mutation runs
      if (auth && !isPlaceholder(auth) && !/IntrospectionQuery/.test(params.operationName ?? ''))
        await Promise.race([socketFor(auth).ready, new Promise((r) => setTimeout(r, 3000))]);
      const filled = await fillVariables(params, headers);
      if (filled.errors) return { errors: filled.errors };
      const result = await overHttp(filled.params, headers);
      if (result.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED')) result.errors.push({ message: tokenHint(auth) });
      return withNote(result, filled.note);
    })();
  };

  const auth = savedAuth();
  const headersText = JSON.stringify({ Authorization: auth ?? TOKEN_PLACEHOLDER }, null, 2);
  const defaultTabs = cfg.examples.map((e) => ({
    query: e.query,
    variables: e.variables ? JSON.stringify(e.variables, null, 2) : undefined,
    headers: headersText,
  }));

  window.addEventListener('DOMContentLoaded', () => {
    // GraphiQL keeps its tabs in this window's sessionStorage: every new window opens on the examples
    YogaGraphiQL.renderYogaGraphiQL(document.getElementById('root'), {
      title: cfg.title,
      endpoint: cfg.endpoint,
      fetcher,
      storage: sessionStorage,
      defaultTabs,
      defaultQuery: '# A new tab: write any operation here. The examples are in the other tabs.\n',
      defaultHeaders: headersText,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: 'headers',
    });
  });
})();
