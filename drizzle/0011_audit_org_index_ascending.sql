-- The organisation's audit index ascending (read backwards for "newest first"): new rows land at
-- the right end of their organisation's range, PostgreSQL's cheap case for a rising key, instead of
-- at its left end (docs/audit.md, "Indexes"). Rebuilt here: writes to audit_events wait for it.
DROP INDEX "audit_events_org_at_idx";--> statement-breakpoint
CREATE INDEX "audit_events_org_at_idx" ON "audit_events" USING btree ("org_id","at","id");
