/** Roles a token can carry. */
export const ROLES = ['patient', 'provider', 'admin', 'service'] as const;
export type Role = (typeof ROLES)[number];

/** The authenticated actor of an operation; workers act as a `system` viewer of one org. */
export interface Viewer {
  userId: string;
  orgId: string;
  role: Role | 'system';
  name: string;
  /** Token expiry, epoch seconds (undefined for system viewers). */
  exp?: number;
  /** Token issue time, epoch seconds (the `iat` claim; compared with a user's session revocation). */
  iat?: number;
}

/** A viewer for background work done on behalf of an organisation. */
export const systemViewer = (orgId: string): Viewer => ({ userId: 'system', orgId, role: 'system', name: 'System' });
