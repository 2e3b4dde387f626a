/** graphql-ws (graphql-transport-ws) close codes used here, by their graphql-ws names. */
export const CloseCode = {
  GoingAway: 1001,
  TryAgainLater: 1013,
  BadRequest: 4400,
  Unauthorized: 4401,
  Forbidden: 4403,
  SubprotocolNotAcceptable: 4406,
  ConnectionInitialisationTimeout: 4408,
  SubscriberAlreadyExists: 4409,
  TooManyInitialisationRequests: 4429,
} as const;

/** The only subprotocol served. */
export const PROTOCOL = 'graphql-transport-ws';
