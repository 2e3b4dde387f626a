ALTER TABLE "call_participants" ADD COLUMN "alive_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "call_participants" DROP COLUMN "last_seen_at";