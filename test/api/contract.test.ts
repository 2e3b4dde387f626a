import { type GraphQLObjectType, getNamedType, isNonNullType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildSchema } from '../../src/graphql/schema.js';

/** The SPEC's API contract: these names are fixed so clients written against one version keep working. */
const CONTRACT: Record<'Query' | 'Mutation' | 'Subscription', Record<string, string>> = {
  Query: {
    me: 'User!',
    conversation: 'Conversation',
    conversations: 'ConversationConnection!',
    presence: '[Presence!]!',
    notifications: 'NotificationConnection!',
    unreadNotificationCount: 'Int!',
    alerts: 'AlertConnection!',
    reminders: '[Reminder!]!',
  },
  Mutation: {
    createConversation: 'Conversation!',
    sendMessage: 'Message!',
    editMessage: 'Message!',
    deleteMessage: 'Message!',
    markConversationRead: 'Conversation!',
    setTyping: 'Boolean!',
    setPresence: 'Presence!',
    markNotificationRead: 'Notification!',
    markAllNotificationsRead: 'Int!',
    raiseAlert: 'Alert!',
    acknowledgeAlert: 'Alert!',
    createReminder: 'Reminder!',
    snoozeReminder: 'Reminder!',
    cancelReminder: 'Reminder!',
  },
  Subscription: {
    conversationEvents: 'ConversationEvent!',
    presenceChanged: 'Presence!',
    notificationEvents: 'NotificationEvent!',
    alertRaised: 'AlertEvent!',
  },
};

describe('API contract (SPEC)', () => {
  const schema = buildSchema();
  for (const [root, fields] of Object.entries(CONTRACT)) {
    it(`${root} has the fixed fields with the fixed types`, () => {
      const type = schema.getType(root) as GraphQLObjectType;
      const actual = Object.fromEntries(Object.keys(fields).map((f) => [f, type.getFields()[f]?.type.toString() ?? 'missing']));
      expect(actual).toEqual(fields);
    });
  }

  it('durable events implement StreamEvent { cursor: String!, at: DateTime! }', () => {
    const iface = schema.getType('StreamEvent') as GraphQLObjectType;
    expect(iface.getFields().cursor?.type.toString()).toBe('String!');
    expect(iface.getFields().at?.type.toString()).toBe('DateTime!');
    for (const name of [
      'MessageAdded',
      'MessageEdited',
      'MessageDeleted',
      'ReadReceipt',
      'NotificationAdded',
      'NotificationRead',
      'UnreadCountChanged',
    ]) {
      const t = schema.getType(name) as GraphQLObjectType;
      expect(
        t.getInterfaces().map((i) => i.name),
        name,
      ).toContain('StreamEvent');
    }
  });

  it('subscriptions take `after` for resume where they are durable', () => {
    const sub = schema.getSubscriptionType() as GraphQLObjectType;
    for (const f of ['conversationEvents', 'notificationEvents', 'alertRaised']) {
      const after = sub.getFields()[f]?.args.find((a) => a.name === 'after');
      expect(after && !isNonNullType(after.type) && getNamedType(after.type).name, f).toBe('String');
    }
  });
});
