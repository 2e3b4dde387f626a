// The one barrel (STYLE): every module's tables, for drizzle-kit and the typed client.
export * from '../realtime/tables.js';
export * from '../modules/identity/tables.js';
export * from '../modules/messaging/tables.js';
export * from '../modules/notifications/tables.js';
export * from '../modules/alerts/tables.js';
export * from '../modules/reminders/tables.js';
export * from '../modules/calls/tables.js';
export * from '../modules/predictions/tables.js';
export * from '../modules/audit/tables.js';
