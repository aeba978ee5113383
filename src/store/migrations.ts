/**
 * Schema migrations, applied in order and recorded in schema_migration. Append only: a released
 * migration is never edited, because databases in the field have already run it.
 */
export const MIGRATIONS: readonly string[] = [
  `
  -- The IIS patient index. Normalised demographics are stored beside the FHIR resource so that
  -- matching never re-normalises the index, and content_hash makes a reload of the same data a no-op.
  CREATE TABLE patient (
    id text PRIMARY KEY,
    given text NOT NULL,
    middle text NOT NULL,
    family text NOT NULL,
    suffix text NOT NULL,
    birth_date text NOT NULL,
    sex text NOT NULL,
    street text NOT NULL,
    city text NOT NULL,
    state text NOT NULL,
    zip text NOT NULL,
    phone text NOT NULL,
    identifiers jsonb NOT NULL,
    replaced_by text,
    resource jsonb NOT NULL,
    content_hash text NOT NULL,
    last_updated timestamptz NOT NULL
  );
  -- Blocking keys: every key a patient can be found by. Matching looks rows up here.
  CREATE TABLE patient_block (
    key text NOT NULL,
    patient_id text NOT NULL REFERENCES patient(id) ON DELETE CASCADE,
    PRIMARY KEY (key, patient_id)
  );
  CREATE INDEX patient_block_patient ON patient_block (patient_id);

  CREATE TABLE immunization (
    id text PRIMARY KEY,
    patient_id text NOT NULL,
    resource jsonb NOT NULL,
    content_hash text NOT NULL,
    last_updated timestamptz NOT NULL
  );
  CREATE INDEX immunization_patient ON immunization (patient_id);

  -- One persistent Group per pipeline target. version counts membership changes.
  CREATE TABLE partner_group (
    id text PRIMARY KEY,
    partner text NOT NULL,
    name text NOT NULL,
    mode text NOT NULL,
    version integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE group_member (
    group_id text NOT NULL REFERENCES partner_group(id),
    patient_id text NOT NULL,
    added_at timestamptz NOT NULL,
    added_by_run text,
    PRIMARY KEY (group_id, patient_id)
  );
  -- Membership history: who joined or left, when, and by which run or decision.
  CREATE TABLE group_event (
    id bigserial PRIMARY KEY,
    group_id text NOT NULL REFERENCES partner_group(id),
    patient_id text NOT NULL,
    action text NOT NULL CHECK (action IN ('added', 'removed')),
    at timestamptz NOT NULL,
    run_id text,
    actor text NOT NULL
  );
  CREATE INDEX group_event_group ON group_event (group_id, at);

  -- A run is one dropped file. The same bytes from the same partner are one run.
  CREATE TABLE run (
    id text PRIMARY KEY,
    partner text NOT NULL,
    file_name text NOT NULL,
    file_sha256 text NOT NULL,
    state text NOT NULL,
    received_at timestamptz NOT NULL,
    finished_at timestamptz,
    group_id text,
    counts jsonb,
    summary jsonb,
    result_path text,
    error jsonb
  );
  CREATE INDEX run_partner_file ON run (partner, file_sha256);

  -- Every row's outcome, with its full explanation. possible/ambiguous rows wait for review here.
  CREATE TABLE run_row (
    run_id text NOT NULL REFERENCES run(id),
    row_index integer NOT NULL,
    line integer NOT NULL,
    record_id text NOT NULL,
    outcome text NOT NULL,
    patient_id text,
    score double precision,
    detail jsonb NOT NULL,
    PRIMARY KEY (run_id, row_index)
  );
  CREATE INDEX run_row_outcome ON run_row (run_id, outcome);

  CREATE TABLE export (
    id text PRIMARY KEY,
    group_id text NOT NULL,
    transaction_time timestamptz NOT NULL,
    dir text NOT NULL,
    manifest jsonb NOT NULL
  );

  CREATE TABLE audit_event (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    entity text NOT NULL,
    detail jsonb
  );
  `,
  `
  -- Queued runs: the pipeline as it was when the file arrived (so every worker applies the same
  -- spec), where the claimed original lies, and the stages it went through.
  ALTER TABLE run ADD COLUMN pipeline jsonb;
  ALTER TABLE run ADD COLUMN source_path text;
  ALTER TABLE run ADD COLUMN row_count integer;
  ALTER TABLE run ADD COLUMN chunk_count integer;
  ALTER TABLE run ADD COLUMN forced boolean NOT NULL DEFAULT false;
  ALTER TABLE run ADD COLUMN timeline jsonb NOT NULL DEFAULT '[]';
  -- The record of processed files lives here, not in Redis: the same bytes from the same partner
  -- are one run unless it failed (a fixed pipeline may retry) or a person forced a re-run.
  CREATE UNIQUE INDEX run_one_per_file ON run (partner, file_sha256) WHERE state <> 'failed' AND NOT forced;

  -- Normalised rows waiting to be matched, so any worker can take any chunk without the file.
  CREATE TABLE run_input (
    run_id text NOT NULL REFERENCES run(id),
    row_index integer NOT NULL,
    row jsonb NOT NULL,
    PRIMARY KEY (run_id, row_index)
  );
  -- Which worker matched which chunk, and when.
  CREATE TABLE run_chunk (
    run_id text NOT NULL REFERENCES run(id),
    chunk integer NOT NULL,
    worker text NOT NULL,
    finished_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, chunk)
  );
  ALTER TABLE export ADD COLUMN run_id text;
  `,
  `
  -- possible and ambiguous rows wait here for a person. An item is open until accepted (with the
  -- patient chosen), rejected (none of the candidates), or superseded by a newer file's row.
  CREATE TABLE review_item (
    id bigserial PRIMARY KEY,
    run_id text NOT NULL REFERENCES run(id),
    row_index integer NOT NULL,
    partner text NOT NULL,
    record_id text NOT NULL,
    outcome text NOT NULL,
    candidates text[] NOT NULL,
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'accepted', 'rejected', 'superseded')),
    patient_id text,
    decided_by text,
    decided_at timestamptz,
    UNIQUE (run_id, row_index)
  );
  CREATE INDEX review_item_partner_state ON review_item (partner, state);
  -- What a person decided about a partner's record, applied to that record in later files.
  CREATE TABLE match_decision (
    partner text NOT NULL,
    record_id text NOT NULL,
    decision text NOT NULL CHECK (decision IN ('accepted', 'rejected')),
    patient_id text,
    rejected_ids text[] NOT NULL DEFAULT '{}',
    decided_by text NOT NULL,
    decided_at timestamptz NOT NULL,
    review_item bigint REFERENCES review_item(id),
    PRIMARY KEY (partner, record_id)
  );
  `,
  `
  -- A counter bumped by every change to the patient index, so in-memory copies know when to reload.
  CREATE TABLE index_state (id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1), version bigint NOT NULL);
  INSERT INTO index_state (id, version) VALUES (1, 0);
  `,
  `
  -- m and u estimated from the data for a partner's pipeline (rostermatch model train).
  CREATE TABLE match_model (
    partner text PRIMARY KEY,
    levels jsonb NOT NULL,
    lambda double precision NOT NULL,
    blocked_pairs integer NOT NULL,
    random_pairs integer NOT NULL,
    trained_at timestamptz NOT NULL
  );
  `,
  `
  -- Operators' console sessions. Only a hash of the session id is stored, so a copy of this table
  -- cannot be replayed as a login. A session ends at expires_at, or after an idle period.
  CREATE TABLE operator_session (
    id_hash text PRIMARY KEY,
    operator text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
  );
  CREATE INDEX audit_event_at ON audit_event (at);
  -- The console and status list runs newest first.
  CREATE INDEX run_received ON run (received_at DESC, id DESC);
  -- A run's rows are paged in file order within an outcome; the index finds a deep page's start
  -- without reading the rows before it, and serves every (run_id, outcome) look-up the old one did.
  CREATE INDEX run_row_outcome_row ON run_row (run_id, outcome, row_index);
  DROP INDEX run_row_outcome;
  -- A Group's size and history length, kept by the one writer of its membership (applyMembership),
  -- so pages do not count half a million rows per request.
  ALTER TABLE partner_group ADD COLUMN member_count integer NOT NULL DEFAULT 0;
  ALTER TABLE partner_group ADD COLUMN event_count bigint NOT NULL DEFAULT 0;
  UPDATE partner_group g SET member_count = (SELECT count(*) FROM group_member m WHERE m.group_id = g.id),
                             event_count = (SELECT count(*) FROM group_event e WHERE e.group_id = g.id);
  -- History is read newest first per Group; nothing orders it by time.
  CREATE INDEX group_event_group_id ON group_event (group_id, id);
  DROP INDEX group_event_group;
  `,
  `
  -- The store's identity: queue jobs carry it, so a worker of another deployment that shares the
  -- Redis and the queue prefix never takes a run it does not hold for done (issue 9).
  CREATE TABLE store_identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    id text NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', '')
  );
  INSERT INTO store_identity DEFAULT VALUES;
  `,
  `
  -- A Group belongs to the partner that created it. partner_group.partner has always been written
  -- by the run that created the Group and never by a later one (the old upsert changed only name
  -- and mode), so existing Groups already name their owner; record which run created each, the
  -- first completed run recorded against it. An operator's "group move" changes the owner (audited).
  ALTER TABLE partner_group ADD COLUMN created_by_run text;
  UPDATE partner_group g SET created_by_run =
    (SELECT r.id FROM run r WHERE r.group_id = g.id AND r.partner = g.partner ORDER BY r.finished_at, r.id LIMIT 1);
  CREATE INDEX partner_group_partner ON partner_group (partner);
  -- A replace run that would remove more than its pipeline allows waits for an operator
  -- (state 'held', then 'completed' when confirmed or 'discarded'): the change as it was shown.
  ALTER TABLE run ADD COLUMN hold jsonb;
  `,
  `
  -- Which version of normalisation and blocking the stored person columns, identifiers and
  -- blocking keys were computed with (1: before issue 10). A store behind the code's version is
  -- rewritten from the stored resources before it is matched against (ensureMatchForm).
  ALTER TABLE index_state ADD COLUMN match_form integer NOT NULL DEFAULT 1;
  `,
  `
  -- Blocking keys are derived from the patient row and written only beside it (patients are never
  -- deleted): the foreign key added a lookup of patient per key, thirteen per patient, to every load.
  ALTER TABLE patient_block DROP CONSTRAINT IF EXISTS patient_block_patient_id_fkey;
  `,
  `
  -- Blocking keys compare byte by byte: they are only ever looked up by equality, and under a
  -- linguistic collation (the server's default, C.UTF-8 here) each comparison goes through
  -- strcoll and sorts lose abbreviated keys, which made building the key index at the end of a
  -- first load half again as slow. Rewrites the table once.
  ALTER TABLE patient_block ALTER COLUMN key TYPE text COLLATE "C";
  `,
  `
  -- In-memory copies of the index follow its changes instead of reloading it whole: each patient
  -- row names the index version that last wrote it, and index_state the version of the last
  -- wholesale rewrite (a new match form), before which a copy cannot be brought up to date.
  ALTER TABLE patient ADD COLUMN changed_in bigint NOT NULL DEFAULT 0;
  CREATE INDEX patient_changed_in ON patient (changed_in, id);
  ALTER TABLE index_state ADD COLUMN rewritten_in bigint NOT NULL DEFAULT 0;
  UPDATE index_state SET rewritten_in = version;
  `,
  `
  -- Open review items by partner and record: recording a run finds the items it supersedes by
  -- record (probed per row, or walked in record order beside the run's rows), where a store
  -- without statistics re-read the run's rows for each open item of the partner.
  CREATE INDEX review_item_open_record ON review_item (partner, record_id) WHERE state = 'open';
  `,
  `
  -- SMART Backend Services clients (issue 12): each acts for one partner and proves itself with
  -- a key of its JWKS, registered inline or at a URL. Assertions are remembered by jti until
  -- they expire, so none is accepted twice; access tokens are kept as their SHA-256 only.
  CREATE TABLE smart_client (
    id text PRIMARY KEY,
    partner text NOT NULL,
    jwks jsonb,
    jwks_url text,
    scopes text NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
  );
  CREATE INDEX smart_client_partner ON smart_client (partner);
  CREATE TABLE client_assertion (
    client_id text NOT NULL,
    jti text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
  );
  CREATE TABLE access_token (
    token_hash text PRIMARY KEY,
    client_id text NOT NULL,
    partner text NOT NULL,
    scopes text[] NOT NULL,
    expires_at timestamptz NOT NULL
  );
  -- A Bulk Data export a client asked for: its request, its state, and its files once complete.
  CREATE TABLE bulk_export (
    id text PRIMARY KEY,
    client_id text NOT NULL,
    partner text NOT NULL,
    group_id text NOT NULL,
    request text NOT NULL,
    params jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'expired')),
    transaction_time timestamptz NOT NULL,
    progress text,
    manifest jsonb,
    error text,
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    expires_at timestamptz,
    polled_at timestamptz
  );
  CREATE INDEX bulk_export_client ON bulk_export (client_id, created_at);
  `,
  `
  -- Membership a partner manages itself over FHIR ($member-add with an attributionPeriod): the
  -- period it gave, beside when the member was added here.
  ALTER TABLE group_member ADD COLUMN period_start timestamptz;
  ALTER TABLE group_member ADD COLUMN period_end timestamptz;
  -- "A reasonable relationship" between a partner and a person (a $member-add is refused without
  -- one): the person was matched for the partner, or is or was in one of its Groups.
  CREATE INDEX run_row_patient ON run_row (patient_id) WHERE patient_id IS NOT NULL;
  CREATE INDEX group_event_patient ON group_event (patient_id, group_id);
  -- A Group an operator defines by characteristics (actual = false: ZIP codes, an age range,
  -- vaccines), evaluated when it is exported; it has no stored members.
  ALTER TABLE partner_group ADD COLUMN actual boolean NOT NULL DEFAULT true;
  ALTER TABLE partner_group ADD COLUMN characteristics jsonb;
  `,
  `
  -- Every instant Bulk _since compares is at the millisecond (src/store/clock.ts). A Group's
  -- created_at and updated_at defaulted to now(), with microseconds: writers now stamp them, and
  -- the defaults keep the millisecond. Values written before are rounded up to the next
  -- millisecond, so each is still later than every transactionTime (an instant at the millisecond)
  -- it was later than, and no later than those it was not.
  UPDATE partner_group
     SET created_at = date_trunc('milliseconds', created_at) + CASE WHEN date_trunc('milliseconds', created_at) < created_at THEN interval '1 millisecond' ELSE interval '0' END,
         updated_at = date_trunc('milliseconds', updated_at) + CASE WHEN date_trunc('milliseconds', updated_at) < updated_at THEN interval '1 millisecond' ELSE interval '0' END
   WHERE date_trunc('milliseconds', created_at) < created_at OR date_trunc('milliseconds', updated_at) < updated_at;
  ALTER TABLE partner_group ALTER COLUMN created_at SET DEFAULT date_trunc('milliseconds', now());
  ALTER TABLE partner_group ALTER COLUMN updated_at SET DEFAULT date_trunc('milliseconds', now());
  `,
  `
  -- HL7 v2 (issue 13): the message a member joined by (MSH-10 of the VXU or QBP), in the Group's
  -- history beside the run; null for rows of flat files.
  ALTER TABLE group_event ADD COLUMN ref text;
  `,
  `
  -- Issue 13: two comparison fields that tell twins apart, in the matcher's view of a patient:
  -- the mother's maiden name (folded as a family name) and the birth order within a multiple
  -- birth ('1'…'9'); '' when the resource does not say. Stored patients get theirs when the
  -- store is next rewritten to the current match form (MATCH_FORM 3).
  ALTER TABLE patient ADD COLUMN mothers_maiden text NOT NULL DEFAULT '';
  ALTER TABLE patient ADD COLUMN birth_order text NOT NULL DEFAULT '';
  `,
  `
  -- The patient identity feed (issue 14, IHE PIXm ITI-104). A merge is one event in each Group
  -- that held the subsumed patient ("merged", naming the survivor in other_patient_id); why a
  -- member left (a removal by the feed, an unmerge) is in reason. A patient the feed removed
  -- keeps its row (the history names it) but is never matched or exported again.
  ALTER TABLE group_event DROP CONSTRAINT IF EXISTS group_event_action_check;
  ALTER TABLE group_event ADD CONSTRAINT group_event_action_check CHECK (action IN ('added', 'removed', 'merged'));
  ALTER TABLE group_event ADD COLUMN other_patient_id text;
  ALTER TABLE group_event ADD COLUMN reason text;
  ALTER TABLE patient ADD COLUMN removed_at timestamptz;
  -- A Patient Identity Source's client: the identifier domains (systems) it may feed.
  ALTER TABLE smart_client ADD COLUMN domains text[] NOT NULL DEFAULT '{}';
  `,
  `
  -- The identity feed finds a patient by the identifier its source assigned, merged-away ones too
  -- (an unmerge names the subsumed patient). Matchable patients are found by their identifier keys
  -- in patient_block; merged-away and removed ones have no keys, and are found by this index,
  -- which holds only them (a few), so a feed transaction stays a probe on a million-patient index.
  CREATE INDEX patient_unmatchable_identifiers ON patient USING gin (identifiers jsonb_path_ops)
    WHERE replaced_by IS NOT NULL OR removed_at IS NOT NULL;
  `,
  `
  -- A merged-away patient keeps its blocking keys (issue 14: a row with its old demographics finds
  -- the survivor). Whom it stands for changes when its survivor is merged, unmerged or removed;
  -- the feed finds the patients merged into one by this index, which holds only them.
  CREATE INDEX patient_replaced_by ON patient (replaced_by) WHERE replaced_by IS NOT NULL;
  `,
  `
  -- Issue 11: each patient's row lists the blocking keys it was given (block_keys), and a
  -- patient's keys are deleted through them, by patient_block's primary key. The index of
  -- patient_block by patient_id goes: built at the end of a first load, it cost as long again as
  -- the primary key, and it served only those deletes. Filled by one hash join, whatever indexes
  -- a store has (a first load that died midway left none).
  ALTER TABLE patient ADD COLUMN block_keys text[] COLLATE "C" NOT NULL DEFAULT '{}';
  UPDATE patient p SET block_keys = k.keys
    FROM (SELECT patient_id, array_agg(key ORDER BY key) AS keys FROM patient_block GROUP BY patient_id) k
   WHERE k.patient_id = p.id;
  DROP INDEX IF EXISTS patient_block_patient;
  `,
];
