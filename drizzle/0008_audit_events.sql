CREATE TABLE "audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"org_id" text NOT NULL,
	"user_id" text NOT NULL,
	"role" text NOT NULL,
	"transport" text NOT NULL,
	"ip" text,
	"socket_id" text,
	"request_id" text NOT NULL,
	"operation" text NOT NULL,
	"operation_name" text,
	"field" text NOT NULL,
	"object_type" text NOT NULL,
	"object_ids" text[] DEFAULT '{}'::text[] NOT NULL,
	"outcome" text NOT NULL,
	"detail" jsonb
);
--> statement-breakpoint
CREATE INDEX "audit_events_org_at_idx" ON "audit_events" USING btree ("org_id","at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "audit_events_org_user_at_idx" ON "audit_events" USING btree ("org_id","user_id","at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "audit_events_object_ids_idx" ON "audit_events" USING gin ("object_ids");--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");--> statement-breakpoint
-- Append-only: rows are never changed (retention deletes old rows; nothing updates one).
CREATE FUNCTION "audit_events_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$;--> statement-breakpoint
CREATE TRIGGER "audit_events_no_update" BEFORE UPDATE ON "audit_events" FOR EACH ROW EXECUTE FUNCTION "audit_events_append_only"();
