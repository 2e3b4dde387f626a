/** Shown in GraphiQL's first tab: a tour a partner can run top to bottom. */
export const EXAMPLE_OPERATIONS = `# Welcome to Wardline.
# 1. Put a token in the Headers tab:  { "Authorization": "Bearer <token>" }
#    (npm start prints demo tokens; \`npm run token -- --sub u1 --org demo --role provider\` mints one.)
# 2. Run the operations below by name. Open a second tab with ConversationEvents
#    to watch a conversation live while you send messages here.

query Me {
  me { id name role }
}

query MyConversations {
  conversations(first: 10) {
    edges { cursor node { id kind title unreadCount lastMessage { body createdAt } } }
    pageInfo { hasNextPage endCursor }
  }
}

query History($conversationId: ID!) {
  conversation(id: $conversationId) {
    title
    messages(last: 20) {
      edges { cursor node { id body sender { name } createdAt editedAt deletedAt } }
      pageInfo { hasPreviousPage startCursor }
    }
  }
}

mutation Send($conversationId: ID!) {
  sendMessage(input: { conversationId: $conversationId, body: "Hello from GraphiQL", clientMessageId: "graphiql-1" }) {
    id body createdAt
  }
}

subscription ConversationEvents($conversationId: ID!, $after: String) {
  conversationEvents(conversationId: $conversationId, after: $after) {
    __typename
    ... on StreamEvent { cursor at }
    ... on MessageAdded { message { id body sender { name } } }
    ... on MessageEdited { message { id body editedAt } }
    ... on MessageDeleted { message { id deletedAt } }
    ... on ReadReceipt { userId messageId }
    ... on TypingIndicator { userId name typing }
  }
}

# --- presence, notifications, alerts, reminders ---

mutation SetBusy {
  setPresence(status: BUSY, statusText: "In clinic") { userId status statusText devices }
}

subscription WatchPresence($userIds: [ID!]!) {
  presenceChanged(userIds: $userIds) { userId status statusText lastSeenAt }
}

subscription Inbox($after: String) {
  notificationEvents(after: $after) {
    __typename
    ... on StreamEvent { cursor at }
    ... on NotificationAdded { notification { id kind priority title } unreadCount }
    ... on NotificationRead { notificationIds all unreadCount }
    ... on UnreadCountChanged { unreadCount }
  }
}

mutation RaiseOutbreakAlert {
  raiseAlert(input: { level: HIGH, type: "outbreak", title: "Measles cluster", regionCode: "AU-NSW",
                      location: { lat: -33.87, lng: 151.21 }, riskScore: 0.7, clientKey: "graphiql-alert-1" }) {
    id level title createdAt
  }
}

subscription AlertsNearMe($after: String) {
  alertRaised(filter: { minLevel: MEDIUM, near: { lat: -33.87, lng: 151.21, radiusKm: 25 } }, after: $after) {
    __typename
    ... on StreamEvent { cursor at }
  }
}

mutation DailyMedication {
  createReminder(input: { kind: MEDICATION, title: "Take your medication", cron: "0 8 * * *",
                          timeZone: "Europe/London", clientKey: "graphiql-reminder-1" }) {
    id status nextAt
  }
}
# --- predictions (synthetic-data demonstration models; not medical devices) ---

query Models {
  models { id aliases status task intendedUse fallback featureSpec { name type unit required min max categories } metrics { name value dataset } }
}

mutation ScoreRisk {
  score(input: { model: "risk-30d", subjectId: "patient-42", clientKey: "graphiql-score-1",
                 features: { lengthOfStay: 6, acuteAdmission: true, charlson: 3, edVisits6m: 2, age: 81, spo2: 93 } }) {
    id score modelVersion fallback fallbackReason explanationMethod explanation { feature value contribution unit } warnings
  }
}

mutation ScoreUrgency {
  score(input: { model: "symptom-urgency", features: { respiratoryRate: 26, spo2: 91, onOxygen: false, systolicBp: 98,
                 pulse: 118, consciousness: "ALERT", temperature: 38.9, dyspnoea: true } }) {
    label probabilities { label probability } explanationMethod explanation { feature contribution }
  }
}

mutation SubmitBatch {
  submitScoringBatch(input: { model: "risk-30d", clientBatchId: "graphiql-batch-1", explain: true, rows: [
    { subjectId: "patient-1", features: { lengthOfStay: 2, acuteAdmission: false, charlson: 0, edVisits6m: 0, age: 45 } },
    { subjectId: "patient-2", features: { lengthOfStay: 12, acuteAdmission: true, charlson: 5, edVisits6m: 3, age: 88 } } ] }) {
    id status totalRows
  }
}

subscription BatchProgress($batchId: ID!) {
  scoringBatchProgress(batchId: $batchId) { status processedRows totalRows progress rowsPerSecond }
}

query BatchResults($batchId: ID!) {
  scoringBatch(id: $batchId) {
    status results(first: 50) { edges { node { rowIndex subjectId score fallback error explanation { feature contribution } } } pageInfo { hasNextPage endCursor } }
  }
}

subscription PatientPredictions($after: String) {
  predictionEvents(subjectId: "patient-42", after: $after) { cursor at prediction { id score label fallback modelVersion } }
}

mutation WatchHighRisk {
  createRiskRule(input: { model: "risk-30d", enterAt: 40, exitAt: 30, cooldownSeconds: 3600 }) { id enterAt exitAt }
}

subscription RiskAlerts($ruleId: ID!, $after: String) {
  riskAlerts(ruleId: $ruleId, after: $after) { cursor at subjectId direction from to prediction { id score } }
}
`;
