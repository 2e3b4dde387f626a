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
`;
