CREATE TABLE "model_aliases" (
	"name" text NOT NULL,
	"alias" text NOT NULL,
	"version" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "model_aliases_name_alias_pk" PRIMARY KEY("name","alias")
);
--> statement-breakpoint
CREATE TABLE "prediction_models" (
	"name" text NOT NULL,
	"version" text NOT NULL,
	"task" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"card" jsonb NOT NULL,
	"weights_sha256" text NOT NULL,
	"registered_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "prediction_models_name_version_pk" PRIMARY KEY("name","version")
);
--> statement-breakpoint
CREATE TABLE "predictions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"subject_id" text,
	"model_name" text NOT NULL,
	"model_version" text NOT NULL,
	"produced_by" text NOT NULL,
	"score" double precision,
	"label" text,
	"probabilities" jsonb,
	"fallback" boolean NOT NULL,
	"fallback_reason" text,
	"explanation" jsonb NOT NULL,
	"explanation_method" text,
	"warnings" jsonb NOT NULL,
	"requested_by" text NOT NULL,
	"client_key" text,
	"request_sha256" text NOT NULL,
	"shadow_of" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "risk_rule_states" (
	"rule_id" uuid NOT NULL,
	"subject_id" text NOT NULL,
	"org_id" text NOT NULL,
	"high" boolean DEFAULT false NOT NULL,
	"last_entered_at" timestamp with time zone,
	"last_score" double precision,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "risk_rule_states_rule_id_subject_id_pk" PRIMARY KEY("rule_id","subject_id")
);
--> statement-breakpoint
CREATE TABLE "risk_rules" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"model_name" text NOT NULL,
	"enter_at" double precision NOT NULL,
	"exit_at" double precision NOT NULL,
	"cooldown_seconds" integer NOT NULL,
	"subject_ids" text[],
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "scoring_batch_rows" (
	"batch_id" uuid NOT NULL,
	"row_index" integer NOT NULL,
	"subject_id" text,
	"features" jsonb NOT NULL,
	CONSTRAINT "scoring_batch_rows_batch_id_row_index_pk" PRIMARY KEY("batch_id","row_index")
);
--> statement-breakpoint
CREATE TABLE "scoring_batches" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"submitted_by" text NOT NULL,
	"client_batch_id" text NOT NULL,
	"request_sha256" text NOT NULL,
	"model_name" text NOT NULL,
	"model_version" text NOT NULL,
	"explain" boolean NOT NULL,
	"top_k" integer NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"total_rows" integer NOT NULL,
	"chunk_size" integer NOT NULL,
	"chunks" integer NOT NULL,
	"processed_rows" integer DEFAULT 0 NOT NULL,
	"failed_rows" integer DEFAULT 0 NOT NULL,
	"fallback_rows" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"progress_at" timestamp with time zone,
	"error" text
);
--> statement-breakpoint
CREATE TABLE "scoring_results" (
	"batch_id" uuid NOT NULL,
	"row_index" integer NOT NULL,
	"subject_id" text,
	"produced_by" text,
	"score" double precision,
	"label" text,
	"probabilities" jsonb,
	"fallback" boolean DEFAULT false NOT NULL,
	"fallback_reason" text,
	"explanation" jsonb,
	"explanation_method" text,
	"warnings" jsonb,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "scoring_results_batch_id_row_index_pk" PRIMARY KEY("batch_id","row_index")
);
--> statement-breakpoint
ALTER TABLE "risk_rule_states" ADD CONSTRAINT "risk_rule_states_rule_id_risk_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."risk_rules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "scoring_batch_rows" ADD CONSTRAINT "scoring_batch_rows_batch_id_scoring_batches_id_fk" FOREIGN KEY ("batch_id") REFERENCES "public"."scoring_batches"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "scoring_results" ADD CONSTRAINT "scoring_results_batch_id_scoring_batches_id_fk" FOREIGN KEY ("batch_id") REFERENCES "public"."scoring_batches"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "predictions_client_key_idx" ON "predictions" USING btree ("org_id","requested_by","client_key");--> statement-breakpoint
CREATE INDEX "predictions_subject_idx" ON "predictions" USING btree ("org_id","subject_id","created_at");--> statement-breakpoint
CREATE INDEX "risk_rules_org_model_idx" ON "risk_rules" USING btree ("org_id","model_name");--> statement-breakpoint
CREATE UNIQUE INDEX "scoring_batches_client_idx" ON "scoring_batches" USING btree ("org_id","submitted_by","client_batch_id");--> statement-breakpoint
CREATE INDEX "scoring_batches_open_idx" ON "scoring_batches" USING btree ("updated_at") WHERE "scoring_batches"."status" in ('queued', 'running');--> statement-breakpoint
CREATE INDEX "scoring_batches_finished_idx" ON "scoring_batches" USING btree ("finished_at");