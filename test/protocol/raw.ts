// A raw graphql-transport-ws socket that records every frame (not a test file).
import type WebSocket from 'ws';
import { closed, rawSocket } from '../harness/clients.js';
import type { TestApp } from '../harness/start-app.js';

export interface Frame {
  type: string;
  id?: string;
  payload?: any;
}

export interface Raw {
  ws: WebSocket;
  frames: Frame[];
  /** Resolves with the close code and reason (armed at creation, so an early close is not missed). */
  closed: Promise<{ code: number; reason: string }>;
  send(msg: unknown): void;
  /** Resolves with the first recorded frame matching `pred` (waiting up to `ms`). */
  next(pred: (f: Frame) => boolean, ms?: number): Promise<Frame>;
  /** connection_init with this authorization, then waits for the ack. */
  init(authorization?: string): Promise<void>;
}

export async function openRaw(app: TestApp, headers: Record<string, string> = {}): Promise<Raw> {
  const ws = rawSocket(app, headers);
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  const done = closed(ws, 30_000);
  done.catch(() => {});
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()) as Frame);
    for (const w of waiters) w();
  });
  ws.on('close', () => {
    for (const w of waiters) w();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const raw: Raw = {
    ws,
    frames,
    closed: done,
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    next: (pred, ms = 5_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const f = frames.find(pred);
          if (f) {
            clearTimeout(t);
            waiters.delete(check);
            resolve(f);
          } else if (ws.readyState >= 2) {
            clearTimeout(t);
            waiters.delete(check);
            reject(new Error(`socket closed before the expected frame; got ${JSON.stringify(frames).slice(0, 300)}`));
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(frames).slice(0, 300)}`));
        }, ms);
        waiters.add(check);
        check();
      }),
    async init(authorization) {
      raw.send({ type: 'connection_init', payload: authorization ? { authorization } : {} });
      await raw.next((f) => f.type === 'connection_ack');
    },
  };
  return raw;
}
