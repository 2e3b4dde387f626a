import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql as apolloGql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { Client as UrqlClient, fetchExchange, subscriptionExchange } from '@urql/core';
import { type Client as WsClient, createClient } from 'graphql-ws';
import { Kind, OperationTypeNode, parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type SeededOrg, seedOrg } from '../harness/seed.js';
import { type TestApp, startApp } from '../harness/start-app.js';
import { conversation } from '../messaging/ops.js';

/**
 * The clients partners use, unmodified, against a real listening server: Apollo Client (HttpLink +
 * GraphQLWsLink), urql (@urql/core + subscriptionExchange over graphql-ws) and the stock graphql-ws
 * client. Each runs a query, a mutation, and a subscription it stops and resumes with `after`:
 * what was sent while it was away arrives first, then live events.
 */
const ME = 'query Me { me { id role } }';
const SEND = `mutation Send($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b }) { id body } }`;
const EVENTS = `subscription Events($c: ID!, $after: String) {
  conversationEvents(conversationId: $c, after: $after) {
    __typename
    ... on StreamEvent { cursor }
    ... on MessageAdded { message { id body } }
  }
}`;

interface Event {
  __typename: string;
  cursor?: string;
  message?: { id: string; body: string };
}

/** What each client must do; implemented with the client's own API only. */
interface Adapter {
  query(query: string, variables?: Record<string, unknown>): Promise<any>;
  mutate(query: string, variables: Record<string, unknown>): Promise<any>;
  subscribe(query: string, variables: Record<string, unknown>, onEvent: (e: Event) => void, onError: (e: unknown) => void): () => void;
  close(): void;
}

let app: TestApp;
let org: SeededOrg;

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const liveCount = () => app.container.fanout.stats().subscriptions;

const wsClient = (token: string): WsClient =>
  createClient({ url: app.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: token }, retryAttempts: 0, lazy: true });

function stockAdapter(token: string): Adapter {
  const ws = wsClient(token);
  const once = (query: string, variables?: Record<string, unknown>) => ws.iterate({ query, variables }).next();
  return {
    // queries and mutations over the same socket, as a graphql-ws-only app does
    query: async (q, v) => (await once(q, v)).value?.data,
    mutate: async (q, v) => (await once(q, v)).value?.data,
    subscribe: (query, variables, onEvent, onError) =>
      ws.subscribe({ query, variables }, { next: (r) => onEvent((r.data as any).conversationEvents), error: onError, complete: () => {} }),
    close: () => void ws.dispose(),
  };
}

function apolloAdapter(token: string): Adapter {
  const ws = wsClient(token);
  const http = new HttpLink({ uri: app.url, headers: { authorization: token } });
  const isSubscription = ({ query }: { query: any }) =>
    query.definitions.some((d: any) => d.kind === Kind.OPERATION_DEFINITION && d.operation === OperationTypeNode.SUBSCRIPTION);
  const client = new ApolloClient({ link: ApolloLink.split(isSubscription, new GraphQLWsLink(ws), http), cache: new InMemoryCache() });
  return {
    query: async (q, v) => (await client.query({ query: apolloGql(q), variables: v, fetchPolicy: 'no-cache' })).data,
    mutate: async (q, v) => (await client.mutate({ mutation: apolloGql(q), variables: v })).data,
    subscribe: (q, v, onEvent, onError) => {
      const s = client.subscribe({ query: apolloGql(q), variables: v, fetchPolicy: 'no-cache' }).subscribe({
        next: (r) => {
          if (r.error) onError(r.error);
          else onEvent((r.data as any).conversationEvents);
        },
        error: onError,
      });
      return () => s.unsubscribe();
    },
    close: () => {
      client.stop();
      void ws.dispose();
    },
  };
}

function urqlAdapter(token: string): Adapter {
  const ws = wsClient(token);
  const client = new UrqlClient({
    url: app.url,
    fetchOptions: { headers: { authorization: token } },
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
  const unwrap = (r: { data?: any; error?: unknown }) => {
    if (r.error) throw r.error;
    return r.data;
  };
  return {
    query: async (q, v) => unwrap(await client.query(q, v ?? {}, { requestPolicy: 'network-only' }).toPromise()),
    mutate: async (q, v) => unwrap(await client.mutation(q, v).toPromise()),
    subscribe: (q, v, onEvent, onError) => {
      const s = client.subscription(q, v).subscribe((r) => {
        if (r.error) onError(r.error);
        else if (r.data) onEvent(r.data.conversationEvents);
      });
      return () => s.unsubscribe();
    },
    close: () => void ws.dispose(),
  };
}

const adapters: Array<[string, (token: string) => Adapter]> = [
  ['graphql-ws (stock client)', stockAdapter],
  ['Apollo Client (HttpLink + GraphQLWsLink)', apolloAdapter],
  ['urql (@urql/core + subscriptionExchange)', urqlAdapter],
];

describe('partner clients against a real server', () => {
  beforeAll(async () => {
    app = await startApp();
    org = await seedOrg(app);
  });
  afterAll(() => app.stop());

  it.each(adapters)('%s: query, mutation, and a subscription resumed with after', async (_name, make) => {
    // the documents parse as written (no client-specific syntax)
    for (const d of [ME, SEND, EVENTS]) parse(d);
    const provider = make(org.provider.token);
    const patient = make(org.patient.token);
    try {
      const me = await provider.query(ME);
      expect(me.me).toMatchObject({ id: org.provider.id, role: 'PROVIDER' }); // Apollo adds __typename

      const c = await conversation(app, org.provider, [org.patient]);
      const first = await provider.mutate(SEND, { c, b: 'one' });
      expect(first.sendMessage.body).toBe('one');

      // live: the patient watches, the provider sends
      const seen: Event[] = [];
      const errors: unknown[] = [];
      const before = liveCount();
      let stop = patient.subscribe(
        EVENTS,
        { c },
        (e) => seen.push(e),
        (e) => errors.push(e),
      );
      await until(() => liveCount() > before || errors.length > 0, 5_000, 'the subscription to be live');
      const two = (await provider.mutate(SEND, { c, b: 'two' })).sendMessage.id;
      await until(() => seen.some((e) => e.message?.id === two) || errors.length > 0, 5_000, 'message two');
      expect(errors).toEqual([]);
      const cursor = seen.find((e) => e.message?.id === two)?.cursor as string;
      expect(cursor).toBeTruthy();
      stop();
      await until(() => liveCount() === before, 5_000, 'the subscription to end');

      // away: two messages are sent; resuming after the last cursor seen delivers them, in order, then live ones
      const three = (await provider.mutate(SEND, { c, b: 'three' })).sendMessage.id;
      const four = (await provider.mutate(SEND, { c, b: 'four' })).sendMessage.id;
      const resumed: Event[] = [];
      stop = patient.subscribe(
        EVENTS,
        { c, after: cursor },
        (e) => resumed.push(e),
        (e) => errors.push(e),
      );
      await until(() => resumed.filter((e) => e.message).length >= 2 || errors.length > 0, 5_000, 'the missed messages');
      await until(() => liveCount() > before, 5_000, 'the resumed subscription to be live');
      const five = (await provider.mutate(SEND, { c, b: 'five' })).sendMessage.id;
      await until(() => resumed.some((e) => e.message?.id === five) || errors.length > 0, 5_000, 'message five');
      stop();
      expect(errors).toEqual([]);
      expect(resumed.filter((e) => e.__typename === 'MessageAdded').map((e) => e.message?.id)).toEqual([three, four, five]);
    } finally {
      provider.close();
      patient.close();
    }
  });
});
