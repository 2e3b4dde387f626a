import type { Config } from '../config.js';
import type { Services } from '../modules/modules.js';
import { mintToken } from '../http/auth.js';
import type { Role, Viewer } from '../shared/viewer.js';

/** The demo organisation `npm start` seeds into an empty database (and `seed` into any). */
export const DEMO_ORG = { id: 'demo', name: 'Demo Clinic' } as const;

export interface DemoUser {
  id: string;
  role: Role;
  name: string;
}

export const DEMO_USERS: readonly DemoUser[] = [
  { id: 'demo-patient', role: 'patient', name: 'Alex Morgan' },
  { id: 'demo-provider', role: 'provider', name: 'Dr. Sam Rivera' },
  { id: 'demo-admin', role: 'admin', name: 'Jordan Lee' },
  { id: 'demo-service', role: 'service', name: 'EHR Bridge' },
];

/** Demo tokens live a week: long enough to explore, short enough to be obviously throwaway. */
export const DEMO_TOKEN_TTL_SECONDS = 7 * 24 * 3600;

const CARE_TEAM_TITLE = 'Care team: Alex Morgan';
const WELCOME = {
  clientMessageId: 'demo-welcome',
  body: 'Hi Alex, this is your care team. Message us here any time; we usually answer within the hour.',
};

export interface DemoSeed {
  orgId: string;
  users: readonly DemoUser[];
  conversationId: string;
  /** False when the demo conversation was already there (seeding again changes nothing). */
  created: boolean;
}

const viewerOf = (u: DemoUser): Viewer => ({ userId: u.id, orgId: DEMO_ORG.id, role: u.role, name: u.name });
const byRole = (role: Role) => DEMO_USERS.find((u) => u.role === role) as DemoUser;

/**
 * Seeds the demo org: a patient, a provider, an admin and a service account, and one care-team
 * conversation between patient and provider with a first message. Goes through the services (so
 * the conversation's events are in the ledger like any other) and is idempotent: run twice, it
 * finds the conversation and the message (by its clientMessageId) instead of adding new ones.
 */
export async function seedDemo(services: Pick<Services, 'identity' | 'messaging'>): Promise<DemoSeed> {
  const { identity, messaging } = services;
  await identity.createOrg(DEMO_ORG.id, DEMO_ORG.name);
  for (const u of DEMO_USERS) await identity.upsertUser({ ...u, orgId: DEMO_ORG.id });

  const provider = viewerOf(byRole('provider'));
  const patient = byRole('patient');
  const existing = await messaging.listConversations(provider, { first: 100 });
  let conv = existing.edges.map((e) => e.node).find((c) => c.kind === 'care_team' && c.title === CARE_TEAM_TITLE);
  const created = !conv;
  conv ??= await messaging.createConversation(provider, { kind: 'care_team', title: CARE_TEAM_TITLE, memberIds: [patient.id] });
  await messaging.sendMessage(provider, { conversationId: conv.id, ...WELCOME });
  return { orgId: DEMO_ORG.id, users: DEMO_USERS, conversationId: conv.id, created };
}

export interface DemoToken extends DemoUser {
  token: string;
}

/** A token per demo user, signed like `npm run token` would (HS256, issuer/audience if configured). */
export async function demoTokens(config: Config, seed: DemoSeed, ttlSeconds = DEMO_TOKEN_TTL_SECONDS): Promise<DemoToken[] | undefined> {
  const secret = config.auth.jwtSecret;
  if (!secret) return undefined; // JWKS: tokens come from the identity provider
  return Promise.all(
    seed.users.map(async (u) => ({
      ...u,
      token: await mintToken(secret, { sub: u.id, org: seed.orgId, role: u.role, name: u.name }, ttlSeconds, config.auth),
    })),
  );
}

/**
 * The text printed for the developer after seeding: tokens to paste and where to paste them.
 * It goes to stdout on purpose (not through the JSON logger), and only for the demo org.
 */
export function formatDemoBanner(seed: DemoSeed, tokens: DemoToken[] | undefined, graphqlUrl: string): string {
  const pad = (s: string, n: number) => s.padEnd(n);
  const lines = [
    '',
    `Demo organisation "${seed.orgId}" (${DEMO_ORG.name}) ${seed.created ? 'seeded' : 'already present'}: ` +
      `${byRole('patient').name} (patient) and ${byRole('provider').name} (provider) share a care-team conversation.`,
  ];
  if (tokens) {
    lines.push(
      `Demo tokens, valid ${Math.round(DEMO_TOKEN_TTL_SECONDS / 86400)} days (GraphiQL Headers tab: {"Authorization": "Bearer <token>"}):`,
      ...tokens.map((t) => `  ${pad(t.role, 9)} ${pad(t.id, 14)} ${pad(t.name, 15)} ${t.token}`),
    );
  } else {
    lines.push('JWKS_URL is set: sign tokens for these users (sub, org "demo", role) with your identity provider.');
  }
  lines.push(
    `Conversation: ${seed.conversationId}   (GraphiQL Variables: {"conversationId": "${seed.conversationId}"})`,
    `GraphiQL: ${graphqlUrl}`,
    'More tokens: npm run token -- --sub <user id> --org demo --role patient|provider|admin|service [--name "Full Name"]',
    '',
  );
  return lines.join('\n');
}
