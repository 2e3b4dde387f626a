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
    name: 'DailyMedication',
    about: ['A reminder for yourself every day at 08:00 London time. Every run creates another; pass `clientKey` to retry safely.'],
    query: `mutation DailyMedication($clientKey: String) {
  createReminder(input: { kind: MEDICATION, title: "Take your medication", cron: "0 8 * * *",
                          timeZone: "Europe/London", clientKey: $clientKey }) {
    id status nextAt
  }
}`,
  },
  {
    name: 'MyCalls',
    about: [
      'Your calls, live (run it in a SECOND window, as the patient: the demo tokens of `npm start`).',
      'ActiveCall first (calls already ringing), then IncomingCall, CallStateChanged and the SDP/ICE',
      'signals addressed to this device. Ring while `ringRemainingMs` is above 0.',
      '`deviceId` names this device: use the same one in AnswerCall.',
    ],
    query: `subscription MyCalls($after: String, $deviceId: String) {
  callEvents(after: $after, deviceId: $deviceId) {
    __typename
    ... on StreamEvent { cursor at }
    ... on ActiveCall { call { id state ringRemainingMs } }
    ... on IncomingCall { call { id state media ringRemainingMs initiator { name } } }
    ... on CallStateChanged { from to reason answeredBy { userId deviceId } call { id state durationSeconds } }
    ... on CallSignal { callId kind payload seq fromDeviceId sender { name } }
  }
}`,
    variables: { deviceId: 'graphiql' },
  },
  {
    name: 'StartCall',
    about: [
      'Starts a video call with the other members of your newest conversation (patients and',
      'providers). It rings for 30 s, then it is MISSED and they get a MISSED_CALL notification.',
      'Calling the same person again while it rings returns the ringing call.',
    ],
    query: `mutation StartCall($conversationId: ID!, $deviceId: String) {
  startCall(input: { conversationId: $conversationId, media: VIDEO, deviceId: $deviceId }) {
    id state kind ringRemainingMs ringDeadline participants { user { name } role state }
  }
}`,
    variables: { conversationId: FIRST_CONVERSATION, deviceId: 'graphiql' },
  },
  {
    name: 'AnswerCall',
    about: [
      'Answers a ringing call on this device (the callee). Paste the call id from MyCalls or',
      'StartCall into `id`. The first device to answer wins; the others see `answeredBy`.',
    ],
    query: `mutation AnswerCall($id: ID!, $deviceId: String) {
  acceptCall(id: $id, deviceId: $deviceId) { id state acceptedAt participants { user { name } state deviceId } }
}`,
    variables: { id: '<call id>', deviceId: 'graphiql' },
  },
  {
    name: 'SendOffer',
    about: [
      'Once the call is ACCEPTED, the caller sends the SDP offer to the answering device (a real',
      'app sends what RTCPeerConnection.createOffer() gave it). Paste the call id and the',
      "callee's user id (demo-patient in the demo). The callee answers with kind: ANSWER.",
    ],
    query: `mutation SendOffer($callId: ID!, $toUserId: ID!) {
  sendCallSignal(input: { callId: $callId, toUserId: $toUserId, kind: OFFER,
                          payload: { type: "offer", sdp: "v=0 (paste a real SDP here)" } })
}`,
    variables: { callId: '<call id>', toUserId: 'demo-patient' },
  },
  {
    name: 'HangUp',
    about: ['Hangs up (either side). Ending a ringing call you started cancels it.'],
    query: `mutation HangUp($id: ID!) {
  endCall(id: $id) { id state reason durationSeconds }
}`,
    variables: { id: '<call id>' },
  },
  {
    name: 'CallHistory',
    about: ['Your calls, newest first, and the ICE servers to give RTCPeerConnection.'],
    query: `query CallHistory {
  callHistory(first: 10) { edges { node { id state reason media createdAt durationSeconds } } }
  callIceServers { iceServers { urls username credential } ttlSeconds turnConfigured }
}`,
  },
  {
    name: 'Models',
    about: [
      'The risk models: versions, aliases (champion, challenger), feature spec with units and ranges,',
      'metrics on a named test set, intended use. Synthetic-data demonstration models, not medical devices.',
    ],
    query: `query Models {
  models { id aliases status task intendedUse fallback featureSpec { name type unit required min max categories } metrics { name value dataset } }
}`,
  },
  {
    name: 'ScoreRisk',
    about: [
      '30-day hospitalisation risk (0-100) for a subject, with the top contributing features (providers',
      'and service accounts). Stored and pushed to PatientPredictions. Pass `clientKey` to retry safely.',
    ],
    query: `mutation ScoreRisk($clientKey: String) {
  score(input: { model: "risk-30d", subjectId: "patient-42", clientKey: $clientKey,
                 features: { lengthOfStay: 6, acuteAdmission: true, charlson: 3, edVisits6m: 2, age: 81, spo2: 93 } }) {
    id score modelVersion fallback fallbackReason explanationMethod explanation { feature value contribution unit } warnings
  }
}`,
  },
  {
    name: 'ScoreUrgency',
    about: ['Symptom urgency (LOW to CRITICAL) with class probabilities and an explanation.'],
    query: `mutation ScoreUrgency {
  score(input: { model: "symptom-urgency", features: { respiratoryRate: 26, spo2: 91, onOxygen: false, systolicBp: 98,
                 pulse: 118, consciousness: "ALERT", temperature: 38.9, dyspnoea: true } }) {
    label probabilities { label probability } explanationMethod explanation { feature contribution }
  }
}`,
  },
  {
    name: 'SubmitBatch',
    about: [
      'Scores rows in the background (workers, in chunks). Watch BatchProgress with the returned id,',
      "then page through BatchResults. `clientBatchId` is the batch's idempotency key: running this",
      'again returns the same batch; change it to submit a new one.',
    ],
    variables: { clientBatchId: 'graphiql-batch-1' },
    query: `mutation SubmitBatch($clientBatchId: String!) {
  submitScoringBatch(input: { model: "risk-30d", clientBatchId: $clientBatchId, explain: true, rows: [
    { subjectId: "patient-1", features: { lengthOfStay: 2, acuteAdmission: false, charlson: 0, edVisits6m: 0, age: 45 } },
    { subjectId: "patient-2", features: { lengthOfStay: 12, acuteAdmission: true, charlson: 5, edVisits6m: 3, age: 88 } } ] }) {
    id status totalRows
  }
}`,
  },
  {
    name: 'BatchProgress',
    about: ['Progress of a batch, live, until it completes. Paste the id from SubmitBatch into `batchId`.'],
    query: `subscription BatchProgress($batchId: ID!) {
  scoringBatchProgress(batchId: $batchId) { status processedRows totalRows progress rowsPerSecond }
}`,
    variables: { batchId: '<batch id>' },
  },
  {
    name: 'BatchResults',
    about: ['The stored results of a batch. Paste the id from SubmitBatch into `batchId`.'],
    query: `query BatchResults($batchId: ID!) {
  scoringBatch(id: $batchId) {
    status results(first: 50) { edges { node { rowIndex subjectId score fallback error explanation { feature contribution } } } pageInfo { hasNextPage endCursor } }
  }
}`,
    variables: { batchId: '<batch id>' },
  },
  {
    name: 'PatientPredictions',
    about: ['Predictions for one subject, live and resumable (run ScoreRisk in another window).'],
    query: `subscription PatientPredictions($after: String) {
  predictionEvents(subjectId: "patient-42", after: $after) { cursor at prediction { id score label fallback modelVersion } }
}`,
  },
  {
    name: 'WatchHighRisk',
    about: ['A risk rule: told when a subject crosses 40 from below (re-armed below 30, at most hourly).'],
    query: `mutation WatchHighRisk {
  createRiskRule(input: { model: "risk-30d", enterAt: 40, exitAt: 30, cooldownSeconds: 3600 }) { id enterAt exitAt }
}`,
  },
  {
    name: 'RiskAlerts',
    about: ['Crossings of a risk rule, live and resumable. Paste the id from WatchHighRisk into `ruleId`.'],
    query: `subscription RiskAlerts($ruleId: ID!, $after: String) {
  riskAlerts(ruleId: $ruleId, after: $after) { cursor at subjectId direction from to prediction { id score } }
}`,
    variables: { ruleId: '<rule id>' },
  },
];

/** Examples that need an id pasted from another example's answer before they run. */
export const NEEDS_INPUT: readonly string[] = ['AnswerCall', 'SendOffer', 'HangUp', 'BatchResults'];

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
