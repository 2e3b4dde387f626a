CREATE TABLE "call_participants" (
	"call_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"org_id" text NOT NULL,
	"role" text NOT NULL,
	"state" text NOT NULL,
	"device_id" text,
	"presence_device" text,
	"joined_at" timestamp with time zone,
	"left_at" timestamp with time zone,
	"reason" text,
	"last_seen_at" timestamp with time zone,
	"quality" jsonb,
	CONSTRAINT "call_participants_call_id_user_id_pk" PRIMARY KEY("call_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "calls" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"kind" text NOT NULL,
	"media" text NOT NULL,
	"state" text NOT NULL,
	"reason" text,
	"initiator_id" text NOT NULL,
	"conversation_id" uuid,
	"pair_key" text,
	"client_call_id" text NOT NULL,
	"request_hash" text NOT NULL,
	"callback_of" uuid,
	"callee_busy" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ring_deadline" timestamp with time zone,
	"connect_deadline" timestamp with time zone,
	"max_end_at" timestamp with time zone NOT NULL,
	"accepted_at" timestamp with time zone,
	"connected_at" timestamp with time zone,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "orgs" ADD COLUMN "call_busy_policy" text;--> statement-breakpoint
ALTER TABLE "call_participants" ADD CONSTRAINT "call_participants_call_id_calls_id_fk" FOREIGN KEY ("call_id") REFERENCES "public"."calls"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "call_participants_user_idx" ON "call_participants" USING btree ("org_id","user_id","call_id");--> statement-breakpoint
CREATE UNIQUE INDEX "calls_client_key_idx" ON "calls" USING btree ("org_id","initiator_id","client_call_id");--> statement-breakpoint
CREATE UNIQUE INDEX "calls_live_pair_idx" ON "calls" USING btree ("org_id","pair_key") WHERE "calls"."kind" = 'direct' and "calls"."state" in ('ringing', 'accepted', 'in_progress');--> statement-breakpoint
CREATE INDEX "calls_ring_due_idx" ON "calls" USING btree ("ring_deadline") WHERE "calls"."ring_deadline" is not null;--> statement-breakpoint
CREATE INDEX "calls_connect_due_idx" ON "calls" USING btree ("connect_deadline") WHERE "calls"."connect_deadline" is not null;--> statement-breakpoint
CREATE INDEX "calls_live_idx" ON "calls" USING btree ("max_end_at") WHERE "calls"."state" in ('accepted', 'in_progress');--> statement-breakpoint
CREATE INDEX "calls_conversation_idx" ON "calls" USING btree ("conversation_id","created_at");