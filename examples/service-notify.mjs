// An internal service (EHR bridge, scheduler) sending many notifications in one request.
// Usage: WARDLINE_URL=http://localhost:4000/graphql WARDLINE_TOKEN=<service token> node examples/service-notify.mjs <userId>...
// Each item has its own clientKey, so running it again sends nothing twice; items fail on their own.
const url = process.env.WARDLINE_URL ?? 'http://localhost:4000/graphql';
const token = process.env.WARDLINE_TOKEN;
const users = process.argv.slice(2);
if (!token || users.length === 0) {
  console.error('usage: WARDLINE_TOKEN=<service token> node examples/service-notify.mjs <userId>...');
  process.exit(2);
}
const day = new Date().toISOString().slice(0, 10);
const inputs = users.map((userId) => ({
  userId,
  kind: 'SYSTEM',
  title: 'Your lab results are ready',
  data: { source: 'lab' },
  clientKey: `lab-results-${day}-${userId}`,
}));
const res = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  body: JSON.stringify({
    query: `mutation ($inputs: [SendNotificationInput!]!) {
      sendNotifications(inputs: $inputs) { index notification { id } error { code message } }
    }`,
    variables: { inputs },
  }),
});
const { data, errors } = await res.json();
if (errors) {
  console.error(errors.map((e) => `${e.extensions?.code}: ${e.message}`).join('\n'));
  process.exit(1);
}
for (const r of data.sendNotifications)
  console.log(`${users[r.index]}: ${r.error ? `${r.error.code} ${r.error.message}` : `sent ${r.notification.id}`}`);
