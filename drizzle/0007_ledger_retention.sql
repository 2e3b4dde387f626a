ALTER TABLE "stream_events" ADD COLUMN "tx" bigint DEFAULT (pg_current_xact_id()::text::bigint) NOT NULL;--> statement-breakpoint
ALTER TABLE "stream_heads" ADD COLUMN "trimmed" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "stream_events_tx_idx" ON "stream_events" USING btree ("tx");