/**
 * GraphiQL's example tabs: one tab per operation, each with the variables it needs prefilled and a
 * comment saying who may run it and what to watch. Every example works when run again (no fixed
 * idempotency key: leave the key out and each run is new; pass one to retry safely).
 */
export interface Example {
  /** The operation's name; also the tab's title. */
  name: string;
  /** Comment lines shown above the operation (without `#`). */
  about: string[];
  query: string;
  /** Prefilled variables. The value `FIRST_CONVERSATION` is replaced, at run time, by your newest conversation's id. */
  variables?: Record<string, unknown>;
}

/** A variable value the GraphiQL page replaces with the viewer's newest conversation id (and says so in the response). */
export const FIRST_CONVERSATION = '<your newest conversation>';

const TOUR: readonly Example[] = [
  {
    name: 'MyConversations',
    about: ['Your conversations, newest first (forward paging: `first`/`after`). Any role but service.'],
    query: `query MyConversations($after: String) {
  conversations(first: 10, after: $after) {
    edges { cursor node { id kind title unreadCount lastMessage { body createdAt } } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  },
  {
    name: 'History',
    about: [
      'The last 20 messages of a conversation.',
      `conversationId "${FIRST_CONVERSATION}" is replaced by your newest conversation's id`,
      '(the response says which); paste any id from MyConversations instead.',
    ],
    query: `query History($conversationId: ID!) {
  conversation(id: $conversationId) {
    title
    messages(last: 20) {
      edges { cursor node { id body sender { name } createdAt editedAt deletedAt } }
      pageInfo { hasPreviousPage startCursor }
    }
  }
}`,
    variables: { conversationId: FIRST_CONVERSATION },
  },
  {
    name: 'ConversationEvents',
    about: [
      'Live events of a conversation. Run it in a SECOND window (open this page again: your token',
      'comes along), then run Send here: the message arrives there. A running subscription stops',
      'when you switch tabs, so keep it in its own window.',
      'Resume: put the `cursor` of the last event you saw in `after` and run again; what you missed',
      'arrives first.',
    ],
    query: `subscription ConversationEvents($conversationId: ID!, $after: String) {
  conversationEvents(conversationId: $conversationId, after: $after) {
    __typename
    ... on StreamEvent { cursor at }
    ... on MessageAdded { message { id body sender { name } } }
    ... on MessageEdited { message { id body editedAt } }
    ... on MessageDeleted { message { id deletedAt } }
    ... on ReadReceipt { userId messageId }
    ... on TypingIndicator { userId name typing }
    ... on MembersChanged { addedUserIds removedUserIds }
  }
}`,
    variables: { conversationId: FIRST_CONVERSATION },
  },
  {
    name: 'Send',
    about: [
      'Sends a message (patients and providers who are members). Every run sends a new message.',
      'To retry safely, pass your own `clientMessageId`: the same id again returns the first message',
      'and sends nothing.',
    ],
    query: `mutation Send($conversationId: ID!, $body: String!, $clientMessageId: String) {
  sendMessage(input: { conversationId: $conversationId, body: $body, clientMessageId: $clientMessageId }) {
    id body createdAt
  }
}`,
    variables: { conversationId: FIRST_CONVERSATION, body: 'Hello from GraphiQL' },
  },
  {
    name: 'SetBusy',
    about: [
      'Sets your presence. Presence comes from open connections: this page keeps one WebSocket',
      'open per token, so you count as online here. Watch it with WatchPresence in a second window.',
    ],
    query: `mutation SetBusy {
  setPresence(status: BUSY, statusText: "In clinic") { userId status statusText devices }
}`,
  },
  {
    name: 'WatchPresence',
    about: [
      'The current presence of each user listed in `userIds`, then every change.',
      'The demo users are demo-patient, demo-provider, demo-admin and demo-service.',
    ],
    query: `subscription WatchPresence($userIds: [ID!]!) {
  presenceChanged(userIds: $userIds) { userId status statusText lastSeenAt }
}`,
    variables: { userIds: ['demo-patient', 'demo-provider'] },
  },
  {
    name: 'Inbox',
    about: ['Your notifications, live. Pass `after` (a cursor) to first receive what you missed.'],
    query: `subscription Inbox($after: String) {
  notificationEvents(after: $after) {
    __typename
    ... on StreamEvent { cursor at }
    ... on NotificationAdded { notification { id kind priority title } unreadCount }
    ... on NotificationRead { notificationIds all unreadCount }
    ... on UnreadCountChanged { unreadCount }
  }
}`,
  },
  {
    name: 'RaiseOutbreakAlert',
    about: [
      'Raises an alert for the whole organisation (providers, admins and service accounts).',
      'Every run raises a new one; pass your own `clientKey` to retry safely.',
      'Watch it arrive with AlertsNearMe (and Inbox) in a second window.',
    ],
    query: `mutation RaiseOutbreakAlert($clientKey: String) {
  raiseAlert(input: { level: HIGH, type: "outbreak", title: "Measles cluster", regionCode: "AU-NSW",
                      location: { lat: -33.87, lng: 151.21 }, riskScore: 0.7, clientKey: $clientKey }) {
    id level title createdAt
  }
}`,
  },
  {
    name: 'AlertsNearMe',
    about: ['Alerts of level MEDIUM or above within 25 km of Sydney, live. Any role.'],
    query: `subscription AlertsNearMe($after: String) {
  alertRaised(filter: { minLevel: MEDIUM, near: { lat: -33.87, lng: 151.21, radiusKm: 25 } }, after: $after) {
    __typename
    ... on StreamEvent { cursor at }
    ... on AlertRaised { alert { id level type title regionCode riskScore location { lat lng } } }
    ... on AlertAcknowledged { alert { id acknowledgedByMe } }
    ... on AlertEscalated { alert { id escalatedAt } }
  }
}`,
  },
  {
    name: 'MyCalls',
    about: [
      'Your calls, live: first each call in progress, then incoming calls and state changes.',
      'Run it in a second window as the patient, then StartCall here as the provider: it rings there',
      '(`ringRemainingMs` above 0) until answered, declined or MISSED after 30 s.',
    ],
    query: `subscription MyCalls($after: String) {
  callEvents(after: $after, deviceId: "graphiql") {
    __typename
    ... on StreamEvent { cursor at }
    ... on ActiveCall { call { id state ringRemainingMs } }
    ... on IncomingCall { call { id state media ringRemainingMs initiator { name } } }
    ... on CallStateChanged { from to reason call { id durationSeconds } }
  }
}`,
  },
  {
    name: 'StartCall',
    about: [
      'Rings the other members of a conversation (audio). Every run starts a new call; pass your own',
      '`clientCallId` to retry without ringing twice. Media goes between the devices, not through Wardline.',
    ],
    query: `mutation StartCall($conversationId: ID!, $clientCallId: String) {
  startCall(input: { conversationId: $conversationId, media: AUDIO, clientCallId: $clientCallId }) {
    id state ringRemainingMs participants { user { name } state }
  }
}`,
    variables: { conversationId: FIRST_CONVERSATION },
  },
  {
    name: 'DailyMedication',
    about: ['A reminder for yourself every day at 08:00 London time. Every run creates another; pass `clientKey` to retry safely.'],
    query: `mutation DailyMedication($clientKey: String) {
  createReminder(input: { kind: MEDICATION, title: "Take your medication", cron: "0 8 * * *",
                          timeZone: "Europe/London", clientKey: $clientKey }) {
    id status nextAt
  }
}`,
  },
];

/** The first tab: what to do first, and where the other examples are. */
const WELCOME: Example = {
  name: 'Me',
  about: [
    'Welcome to Wardline. Who the token in the Headers tab belongs to (any role).',
    '',
    '1. Put a token in the Headers tab (bottom panel):  { "Authorization": "Bearer <token>" }',
    '   `npm start` prints demo tokens; `npm run token -- --sub demo-provider --org demo --role provider`',
    '   mints one. This page remembers the last token you ran with and fills it into new tabs and windows.',
    '2. Run this tab (the ▶ button, or Ctrl-Enter).',
    '3. Every example has its own tab above, variables filled in:',
    `   ${TOUR.map((e) => e.name).join(', ')}.`,
    '4. Subscriptions keep running until you stop them or switch tabs: open this page in a second',
    '   window for them (ConversationEvents there, Send here).',
  ],
  query: `query Me {
  me { id name role }
}`,
};

/** Every example, in tab order. */
export const EXAMPLES: readonly Example[] = [WELCOME, ...TOUR];

/** Comment lines wrapped to fit GraphiQL's editor at 1440 px (continuations keep the indent). */
const WIDTH = 60;
function wrap(line: string): string[] {
  const indent = /^\s*(\d+\.\s+)?/.exec(line)?.[0].replace(/\S/g, ' ') ?? '';
  const out: string[] = [];
  let cur = '';
  for (const word of line.split(' ')) {
    if (cur && `${cur} ${word}`.length > WIDTH) {
      out.push(cur);
      cur = indent + word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  out.push(cur);
  return out;
}

/** Source lines joined into paragraphs: a line starting in lower case, a space, `(` or a backtick continues the previous one. */
function paragraphs(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    if (out.length && l && /^[\s a-z(`]/.test(l) && out[out.length - 1]) out[out.length - 1] += ` ${l.trim()}`;
    else out.push(l);
  }
  return out;
}

/** An example as GraphiQL shows it: its comment, then the operation. */
export const exampleText = (e: Example) =>
  `${paragraphs(e.about)
    .flatMap(wrap)
    .map((l) => (l ? `# ${l}` : '#'))
    .join('\n')}\n\n${e.query}\n`;

/** Every example operation in one document (for validation). */
export const EXAMPLE_OPERATIONS = EXAMPLES.map((e) => e.query).join('\n\n');
