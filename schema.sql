-- streamer star schema (contract §5-6). Idempotent: warmup runs it on every start.
-- Every statement is safe to run again; nothing here deletes data.

CREATE TABLE IF NOT EXISTS dim_date (
    full_date     date PRIMARY KEY,
    day_of_week   smallint NOT NULL,  -- 1 = Monday ... 7 = Sunday
    day_name      text     NOT NULL,
    day_of_month  smallint NOT NULL,
    day_of_year   smallint NOT NULL,
    week_of_year  smallint NOT NULL,  -- ISO 8601 week
    month         smallint NOT NULL,
    month_name    text     NOT NULL,
    quarter       smallint NOT NULL,
    year          integer  NOT NULL,
    is_weekend    boolean  NOT NULL
);

-- current_url / language_code come from the earliest event (first_seen = its time_stamp,
-- ties broken by URL) unless a catalog CSV set them (from_catalog), which always wins.
CREATE TABLE IF NOT EXISTS dim_product (
    product_key    text PRIMARY KEY,
    name           text,
    current_url    text,
    language_code  text,
    first_seen     bigint,
    from_catalog   boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS dim_location (
    ip_key        text PRIMARY KEY,
    ip_address    text NOT NULL,
    country_code  text,
    country_name  text,
    region_name   text,
    city_name     text
);

-- Bumped by a warmup whose locations catalog changed the geography of existing
-- dim_location rows, under the advisory lock every loader's transaction takes shared first
-- (src/sink/dims.rs, LOCATIONS_LOCK): a loader reading a newer epoch forgets the countries
-- it had cached for its rollup counts.
CREATE TABLE IF NOT EXISTS streamer_location_epoch (epoch bigint NOT NULL);
INSERT INTO streamer_location_epoch SELECT 0
WHERE NOT EXISTS (SELECT 1 FROM streamer_location_epoch);

CREATE TABLE IF NOT EXISTS dim_user_agent (
    user_agent_key   text PRIMARY KEY,
    user_agent       text NOT NULL,
    browser          text,
    browser_version  text,
    os               text,
    os_version       text,
    device_category  text
);

-- One row per distinct sales_key; the first one written wins.
-- Keys reference the dimensions; every non-NULL key exists there at every commit
-- (the writer guarantees it inside each transaction; no FK constraint, as usual in a
-- warehouse, so loads stay fast).
CREATE TABLE IF NOT EXISTS fact_sales (
    sales_key            text PRIMARY KEY,
    event_id             text NOT NULL,
    doc_id               text,
    time_stamp           bigint NOT NULL,
    full_date            date NOT NULL,
    full_time            time NOT NULL,
    ip_key               text,
    user_agent_key       text,
    product_key          text,
    store_id             text,
    local_time           text,
    current_url          text,
    referrer_url         text,
    email_address        text,
    resolution           text,
    user_id_db           text,
    device_id            text,
    api_version          text,
    show_recommendation  text,
    recommendation       text,
    utm_source           text,
    utm_medium           text,
    collection           text,
    "option"             text
);

-- Where each (consumer group, topic, partition) resumes: committed with the rows it covers.
CREATE TABLE IF NOT EXISTS stream_offsets (
    consumer_group  text    NOT NULL,
    topic           text    NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint  NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
-- What the committed batches of each partition held, counted in their own transactions
-- (so exactly as committed): `streamer status` reconciles them. start_offset: where this
-- group began (NULL for rows stored before it was kept); records: messages read;
-- facts: fact rows those messages added; dead_letters: messages dead-lettered. The rest
-- of the records were duplicates; offsets between start and next without a record are
-- gaps (transaction markers, aborted or compacted records, skipped out-of-range offsets).
ALTER TABLE stream_offsets
    ADD COLUMN IF NOT EXISTS start_offset bigint,
    ADD COLUMN IF NOT EXISTS records bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS facts bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS dead_letters bigint NOT NULL DEFAULT 0;

-- Fact keys the loaders of one consumer group committed lately, published while another
-- process stores keys of theirs (src/sink/shared.rs): one row per batch, the first 8 bytes
-- of each new key's digest, in the batch's transaction. Each process reads the others'
-- rows, so that before a COPY it looks up only the keys someone may have stored, not all
-- of them. A hint only: a key missing here is found by the COPY's unique check, which
-- sends the batch through its lookup rounds. Unlogged (lost in a crash, which costs
-- lookups, not rows); rows older than ten minutes are deleted by the writers.
CREATE UNLOGGED TABLE IF NOT EXISTS stream_recent_keys (
    id              bigserial PRIMARY KEY,
    consumer_group  text        NOT NULL,
    writer          text        NOT NULL,
    written_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    prefixes        bytea       NOT NULL
);
CREATE INDEX IF NOT EXISTS stream_recent_keys_by_time
    ON stream_recent_keys (consumer_group, written_at);

-- Messages that could not become a fact row (contract §4), committed with their batch.
CREATE TABLE IF NOT EXISTS dead_letter (
    id            bigserial PRIMARY KEY,
    topic         text    NOT NULL,
    partition     integer NOT NULL,
    kafka_offset  bigint  NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    reason        text    NOT NULL,
    payload       bytea
);

-- Tables that predate streamer are kept as they are (CREATE TABLE IF NOT EXISTS), and a
-- job that created them another way (pandas `to_sql`, as the Spark job's writers did)
-- left them without keys. The load's guarantees rest on these unique keys: one fact row
-- per sales_key (without it a replay or a duplicate on another partition is a second
-- row), the dimension upserts, the offsets fence. Warmup stops, naming what is missing,
-- instead of loading duplicates.
DO $$
DECLARE
    want record;
BEGIN
    FOR want IN
        SELECT * FROM (VALUES
            ('fact_sales', ARRAY['sales_key']),
            ('dim_date', ARRAY['full_date']),
            ('dim_product', ARRAY['product_key']),
            ('dim_location', ARRAY['ip_key']),
            ('dim_user_agent', ARRAY['user_agent_key']),
            ('stream_offsets', ARRAY['consumer_group', 'topic', 'partition'])) AS w(tbl, cols)
    LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_index i
            WHERE i.indrelid = to_regclass(want.tbl) AND i.indisunique AND i.indisvalid
              AND i.indpred IS NULL AND i.indexprs IS NULL
              AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
                   FROM pg_attribute a
                   WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey))
                  = (SELECT array_agg(c ORDER BY c) FROM unnest(want.cols) AS c)) THEN
            RAISE EXCEPTION 'table % exists without a unique key on (%), which streamer''s load relies on',
                    want.tbl, array_to_string(want.cols, ', ')
                USING HINT = format('It was created by something else. Remove duplicate rows, then '
                                    'ALTER TABLE %s ADD PRIMARY KEY (%s); or load into an empty schema.',
                                    want.tbl, array_to_string(want.cols, ', '));
        END IF;
    END LOOP;
END
$$;

-- dim_date rows for the given days (the one place that computes a date's attributes);
-- returns how many were new. The writer adds days outside warmup's range this way.
CREATE OR REPLACE FUNCTION streamer_add_dates(days date[])
RETURNS bigint LANGUAGE sql AS $$
    WITH added AS (
        INSERT INTO dim_date
        SELECT d,
               extract(isodow FROM d)::smallint,
               trim(to_char(d, 'Day')),
               extract(day FROM d)::smallint,
               extract(doy FROM d)::smallint,
               extract(week FROM d)::smallint,
               extract(month FROM d)::smallint,
               trim(to_char(d, 'Month')),
               extract(quarter FROM d)::smallint,
               extract(year FROM d)::integer,
               extract(isodow FROM d) >= 6
        FROM unnest(days) AS d
        ON CONFLICT (full_date) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM added;
$$;

-- Every day from first_day to last_day (warmup fills 2010-2030); returns how many were new.
CREATE OR REPLACE FUNCTION streamer_fill_dim_date(first_day date, last_day date)
RETURNS bigint LANGUAGE sql AS $$
    SELECT streamer_add_dates(ARRAY(
        SELECT generate_series(first_day, last_day, interval '1 day')::date));
$$;

-- Report rollups --------------------------------------------------------------------------
-- Four small per-day tables that the reports read instead of fact_sales, so a report costs
-- the same on a day of 1,000 views as on a day of 5 million. Statement-level triggers on
-- fact_sales append each statement's rows (a hand-written INSERT, UPDATE or DELETE, a
-- rebuild), counted by the raw keys fact_sales holds (streamer_rollup_statements), to the
-- pending tables, in the writer's own transaction, so the counts are exactly as committed
-- as the facts. streamer's loaders append the counts of the rows they insert themselves,
-- by the same keys, in the same layout and transaction (src/sink/rollup.rs: the trigger's
-- GROUP BYs were a third of PostgreSQL's time per batch beyond the COPY), and set
-- streamer.rollups_counted for the transaction so the insert trigger skips them. A folder
-- moves them into these tables every half second (up to every 2 s under a backlog)
-- (streamer_fold_rollups), resolving country and browser/OS from the dimensions then. A
-- later change of a dim_location row (a locations catalog at warmup) makes warmup rebuild
-- the rollups. A DELETE appends negative counts, so a rollup row may be lower than it was,
-- its sum over the day never below 0. Keys whose views drop to 0 stay; the reports skip
-- them. Each upsert takes its rows in key order, so folds never deadlock.

-- Tables of the earlier layouts (a `shard` column, countries in the pending counts, a
-- pending row per key) are
-- derived data: they are dropped, created anew below, and rebuilt by warmup from
-- fact_sales (streamer_rollups_missing).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND column_name = 'shard'
                 AND table_name IN ('rollup_product_hour', 'rollup_store_country_day',
                                    'rollup_referrer_day', 'rollup_browser_hour'))
       OR EXISTS (SELECT 1 FROM information_schema.columns
                  WHERE table_schema = current_schema() AND column_name = 'country_code'
                    AND data_type <> 'ARRAY'
                    AND table_name = 'rollup_store_country_day_pending')
       OR EXISTS (SELECT 1 FROM information_schema.columns
                  WHERE table_schema = current_schema() AND column_name = 'views'
                    AND data_type <> 'ARRAY'
                    AND table_name IN ('rollup_product_hour_pending',
                                       'rollup_store_country_day_pending',
                                       'rollup_referrer_day_pending',
                                       'rollup_browser_hour_pending')) THEN
        DROP TABLE IF EXISTS rollup_product_hour, rollup_product_hour_pending,
            rollup_store_country_day, rollup_store_country_day_pending, rollup_referrer_day,
            rollup_referrer_day_pending, rollup_browser_hour, rollup_browser_hour_pending
            CASCADE;
    END IF;
END
$$;
DROP TABLE IF EXISTS streamer_catalog_version;

CREATE TABLE IF NOT EXISTS rollup_product_hour (
    full_date    date     NOT NULL,
    hour         smallint NOT NULL,  -- UTC hour of full_time, 0-23
    product_key  text     NOT NULL,  -- facts without product_key are not counted here
    views        bigint   NOT NULL,
    PRIMARY KEY (full_date, hour, product_key)
);

CREATE TABLE IF NOT EXISTS rollup_store_country_day (
    full_date     date   NOT NULL,
    store_id      text,              -- NULL: facts without store_id
    country_code  text,              -- NULL: no ip, or an address without geography
    country_name  text,              -- the least name dim_location gives for the code
    views         bigint NOT NULL    -- every fact of the day counts in exactly one row
);
CREATE UNIQUE INDEX IF NOT EXISTS rollup_store_country_day_key ON rollup_store_country_day
    (full_date, (store_id IS NULL), coalesce(store_id, ''),
     (country_code IS NULL), coalesce(country_code, ''));

CREATE TABLE IF NOT EXISTS rollup_referrer_day (
    full_date     date   NOT NULL,
    referrer_url  text   NOT NULL,   -- the referrer host; facts without one are not counted
    views         bigint NOT NULL,
    PRIMARY KEY (full_date, referrer_url)
);

CREATE TABLE IF NOT EXISTS rollup_browser_hour (
    full_date  date     NOT NULL,
    hour       smallint NOT NULL,
    browser    text     NOT NULL,    -- 'unknown' when the agent or its browser is unknown
    os         text     NOT NULL,    -- likewise
    views      bigint   NOT NULL,
    PRIMARY KEY (full_date, hour, browser, os)
);

-- Every fold updates most of a day's rollup rows. Room on their pages keeps those updates
-- on the page (HOT: no new index entry, the old version pruned without a VACUUM): 86% of
-- the product/hour updates instead of 5%, folds of its 4,000 rows 30% cheaper, the table
-- half the size. Set on tables made before this, for the pages they add from now on.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class
                   WHERE oid = 'rollup_product_hour'::regclass
                     AND 'fillfactor=70' = ANY (coalesce(reloptions, '{}'))) THEN
        ALTER TABLE rollup_product_hour SET (fillfactor = 70);
        ALTER TABLE rollup_store_country_day SET (fillfactor = 70);
        ALTER TABLE rollup_referrer_day SET (fillfactor = 70);
        ALTER TABLE rollup_browser_hour SET (fillfactor = 70);
    END IF;
END
$$;

-- Pending counts, by the raw keys of fact_sales: appended by the triggers in the writer's
-- transaction, one row per statement holding its counts as parallel arrays (element i of
-- each array is one key and its views; no index, no upsert: an append costs a writer one
-- row, and writers never wait for each other on a rollup row), moved into the rollups by
-- the folder in transactions of its own. A count is in exactly one place at every commit; the reports read both, through
-- the rollup_*_all views below, which resolve the pending keys the way a fold does.
CREATE TABLE IF NOT EXISTS rollup_product_hour_pending (
    full_date    date[]     NOT NULL,
    hour         smallint[] NOT NULL,
    product_key  text[]     NOT NULL,
    views        bigint[]   NOT NULL
);
CREATE TABLE IF NOT EXISTS rollup_store_country_day_pending (
    full_date     date[]   NOT NULL,
    store_id      text[]   NOT NULL,  -- elements may be NULL
    ip_key        text[],             -- the country is dim_location's when folded
    views         bigint[] NOT NULL,
    -- An element whose ip_key is NULL carries its country here (NULL arrays: none does).
    -- streamer's loaders count by the country dim_location holds for the address, which
    -- they read in their own transaction (src/sink/rollup.rs); the trigger leaves it to the
    -- fold. Resolving each address when folding cost PostgreSQL some 3 us a count, a
    -- quarter of its time during a load.
    country_code  text[],
    country_name  text[]
);
-- The layout before the loaders resolved countries had ip_key only.
ALTER TABLE rollup_store_country_day_pending
    ADD COLUMN IF NOT EXISTS country_code text[], ADD COLUMN IF NOT EXISTS country_name text[];
ALTER TABLE rollup_store_country_day_pending ALTER COLUMN ip_key DROP NOT NULL;
CREATE TABLE IF NOT EXISTS rollup_referrer_day_pending (
    full_date     date[]   NOT NULL,
    referrer_url  text[]   NOT NULL,
    views         bigint[] NOT NULL
);
CREATE TABLE IF NOT EXISTS rollup_browser_hour_pending (
    full_date       date[]     NOT NULL,
    hour            smallint[] NOT NULL,
    user_agent_key  text[]     NOT NULL,  -- browser and OS are dim_user_agent's when folded
    views           bigint[]   NOT NULL
);

-- Vacuums (the folder's, autovacuum's) leave the pending tables' empty tails: truncating
-- needs an exclusive lock, which a vacuum retries for up to 5 s while loaders append.
ALTER TABLE rollup_product_hour_pending SET (vacuum_truncate = false);
ALTER TABLE rollup_store_country_day_pending SET (vacuum_truncate = false);
ALTER TABLE rollup_referrer_day_pending SET (vacuum_truncate = false);
ALTER TABLE rollup_browser_hour_pending SET (vacuum_truncate = false);

-- The arrays are stored out of line uncompressed: compressing a batch's addresses (pglz)
-- took longer than counting them.
ALTER TABLE rollup_product_hour_pending
    ALTER COLUMN full_date SET STORAGE EXTERNAL, ALTER COLUMN hour SET STORAGE EXTERNAL,
    ALTER COLUMN product_key SET STORAGE EXTERNAL, ALTER COLUMN views SET STORAGE EXTERNAL;
ALTER TABLE rollup_store_country_day_pending
    ALTER COLUMN full_date SET STORAGE EXTERNAL, ALTER COLUMN store_id SET STORAGE EXTERNAL,
    ALTER COLUMN ip_key SET STORAGE EXTERNAL, ALTER COLUMN views SET STORAGE EXTERNAL,
    ALTER COLUMN country_code SET STORAGE EXTERNAL, ALTER COLUMN country_name SET STORAGE EXTERNAL;
ALTER TABLE rollup_referrer_day_pending
    ALTER COLUMN full_date SET STORAGE EXTERNAL, ALTER COLUMN referrer_url SET STORAGE EXTERNAL,
    ALTER COLUMN views SET STORAGE EXTERNAL;
ALTER TABLE rollup_browser_hour_pending
    ALTER COLUMN full_date SET STORAGE EXTERNAL, ALTER COLUMN hour SET STORAGE EXTERNAL,
    ALTER COLUMN user_agent_key SET STORAGE EXTERNAL, ALTER COLUMN views SET STORAGE EXTERNAL;

-- The counts of one pending store/country row with their countries: carried by the
-- element, or dim_location's for its ip_key. (One SELECT: PostgreSQL inlines it.)
CREATE OR REPLACE FUNCTION streamer_store_country_elements(
    dates date[], stores text[], ip_keys text[], counts bigint[], codes text[], names text[])
RETURNS TABLE (full_date date, store_id text, country_code text, country_name text,
               views bigint)
LANGUAGE sql STABLE AS $$
    SELECT u.full_date, u.store_id,
           CASE WHEN u.ip_key IS NULL THEN u.country_code ELSE l.country_code END,
           CASE WHEN u.ip_key IS NULL THEN u.country_name ELSE l.country_name END,
           u.views
    FROM unnest($1, $2, $3, $4, $5, $6)
         AS u(full_date, store_id, ip_key, views, country_code, country_name)
    LEFT JOIN dim_location l ON l.ip_key = u.ip_key
$$;

-- What the reports read: each rollup with its pending counts (a key may have several rows;
-- its views are their sum).
CREATE OR REPLACE VIEW rollup_product_hour_all AS
    SELECT full_date, hour, product_key, views FROM rollup_product_hour
    UNION ALL
    SELECT u.full_date, u.hour, u.product_key, u.views
    FROM rollup_product_hour_pending p,
         unnest(p.full_date, p.hour, p.product_key, p.views) AS u(full_date, hour, product_key, views);
CREATE OR REPLACE VIEW rollup_store_country_day_all AS
    SELECT full_date, store_id, country_code, country_name, views FROM rollup_store_country_day
    UNION ALL
    SELECT u.full_date, u.store_id, u.country_code, u.country_name, u.views
    FROM rollup_store_country_day_pending p,
         streamer_store_country_elements(p.full_date, p.store_id, p.ip_key, p.views,
                                         p.country_code, p.country_name) u;
DROP VIEW IF EXISTS streamer_store_country_pending; -- an interim form of the above
CREATE OR REPLACE VIEW rollup_referrer_day_all AS
    SELECT full_date, referrer_url, views FROM rollup_referrer_day
    UNION ALL
    SELECT u.full_date, u.referrer_url, u.views
    FROM rollup_referrer_day_pending p,
         unnest(p.full_date, p.referrer_url, p.views) AS u(full_date, referrer_url, views);
CREATE OR REPLACE VIEW rollup_browser_hour_all AS
    SELECT full_date, hour, browser, os, views FROM rollup_browser_hour
    UNION ALL
    SELECT u.full_date, u.hour, coalesce(a.browser, 'unknown'), coalesce(a.os, 'unknown'),
           u.views
    FROM rollup_browser_hour_pending p
    CROSS JOIN unnest(p.full_date, p.hour, p.user_agent_key, p.views)
               AS u(full_date, hour, user_agent_key, views)
    LEFT JOIN dim_user_agent a ON a.user_agent_key = u.user_agent_key;

-- Every rollup table and its pending table, in the one order that every statement locking
-- several of them takes (a fold, a rebuild, a TRUNCATE of fact_sales), so they never
-- deadlock.
--   rollup_product_hour, rollup_product_hour_pending, rollup_store_country_day,
--   rollup_store_country_day_pending, rollup_referrer_day, rollup_referrer_day_pending,
--   rollup_browser_hour, rollup_browser_hour_pending

-- Pending counts the folder could not move into their rollup (PostgreSQL refused the key
-- for a data reason: SQLSTATE class 22, 23 or 54, e.g. a column narrowed by hand), kept
-- here with the refusal instead of blocking every later fold. `pending` is the key and its
-- summed views as JSON.
CREATE TABLE IF NOT EXISTS rollup_rejected (
    id           bigserial PRIMARY KEY,
    rollup       text   NOT NULL,
    pending      jsonb  NOT NULL,
    sqlstate     text   NOT NULL,
    message      text   NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);

-- Move every committed pending count into the rollups, in the caller's transaction;
-- returns the number of rollup rows added or updated. streamer_fold_rollup does one
-- rollup (its own lock, so the folder's last fold moves two at once on two connections);
-- this one does the four in the order of the list above. Concurrent folds of one rollup
-- (two processes' folders) take turns. Should PostgreSQL refuse a bulk move for a data
-- reason, each of its keys is moved on its own (streamer_fold_rollups_by_key), and the
-- keys it refuses go to rollup_rejected. work_mem: a fold during a load groups a few
-- hundred thousand pending elements, which spilled to disk at the default 4MB.
DROP FUNCTION IF EXISTS streamer_fold_rollups_bulk(), streamer_fold_rollups_by_key();
CREATE OR REPLACE FUNCTION streamer_fold_rollup(which text) RETURNS bigint LANGUAGE plpgsql
    SET work_mem = '64MB' AS $$
BEGIN
    -- the rollup and its pending table, then the rollup's own advisory lock ("STFL" and
    -- its place in the list): nothing else takes those, so none is held while waiting
    -- for a table lock
    CASE which
        WHEN 'rollup_product_hour' THEN
            LOCK TABLE rollup_product_hour, rollup_product_hour_pending IN ROW EXCLUSIVE MODE;
            PERFORM pg_advisory_xact_lock(1398031948, 1);
        WHEN 'rollup_store_country_day' THEN
            LOCK TABLE rollup_store_country_day, rollup_store_country_day_pending
                IN ROW EXCLUSIVE MODE;
            PERFORM pg_advisory_xact_lock(1398031948, 2);
        WHEN 'rollup_referrer_day' THEN
            LOCK TABLE rollup_referrer_day, rollup_referrer_day_pending IN ROW EXCLUSIVE MODE;
            PERFORM pg_advisory_xact_lock(1398031948, 3);
        WHEN 'rollup_browser_hour' THEN
            LOCK TABLE rollup_browser_hour, rollup_browser_hour_pending IN ROW EXCLUSIVE MODE;
            PERFORM pg_advisory_xact_lock(1398031948, 4);
        ELSE
            RAISE EXCEPTION 'streamer_fold_rollup: no rollup %', which;
    END CASE;
    BEGIN
        RETURN streamer_fold_rollups_bulk(which);
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
        RAISE WARNING 'streamer: folding the pending % counts in bulk failed (SQLSTATE %: %); moving each key on its own',
            which, SQLSTATE, SQLERRM;
    END;
    RETURN streamer_fold_rollups_by_key(which);
END
$$;

CREATE OR REPLACE FUNCTION streamer_fold_rollups() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    total bigint := 0;
BEGIN
    total := total + streamer_fold_rollup('rollup_product_hour');
    total := total + streamer_fold_rollup('rollup_store_country_day');
    total := total + streamer_fold_rollup('rollup_referrer_day');
    RETURN total + streamer_fold_rollup('rollup_browser_hour');
END
$$;

-- The bulk move of one rollup (streamer_fold_rollup holds the locks). The pending counts
-- of the product/hour, referrer and browser rollups are summed per key, the keys already
-- in the rollup are updated through a join, and only the others are inserted (ON CONFLICT
-- for a key another writer inserted meanwhile): during a load nearly every key of a fold
-- is there already, and the join updated 4,000 product/hour rows in 35-36 ms where an
-- upsert per key took 55-59 ms. (Store/country stays an upsert: there the join was not
-- faster.) Folds of one rollup take turns (streamer_fold_rollup's advisory lock), so two
-- processes' folders never update its rows in different orders.
CREATE OR REPLACE FUNCTION streamer_fold_rollups_bulk(which text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;
BEGIN
    IF which = 'rollup_product_hour' THEN
        WITH p AS (DELETE FROM rollup_product_hour_pending RETURNING *),
             g AS (SELECT u.full_date, u.hour, u.product_key, sum(u.views)::bigint AS views
                   FROM p, unnest(p.full_date, p.hour, p.product_key, p.views)
                           AS u(full_date, hour, product_key, views)
                   GROUP BY 1, 2, 3),
             up AS (UPDATE rollup_product_hour r SET views = r.views + g.views FROM g
                    WHERE r.full_date = g.full_date AND r.hour = g.hour
                      AND r.product_key = g.product_key
                    RETURNING r.full_date, r.hour, r.product_key),
             ins AS (INSERT INTO rollup_product_hour AS r (full_date, hour, product_key, views)
               SELECT g.full_date, g.hour, g.product_key, g.views FROM g
               WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.full_date = g.full_date
                                   AND up.hour = g.hour AND up.product_key = g.product_key)
               ORDER BY 1, 2, 3
               ON CONFLICT (full_date, hour, product_key) DO UPDATE SET views = r.views + EXCLUDED.views
                     RETURNING 1)
        SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM ins) INTO n;
    ELSIF which = 'rollup_store_country_day' THEN
        WITH p AS (DELETE FROM rollup_store_country_day_pending RETURNING *),
             d AS (SELECT u.* FROM p, streamer_store_country_elements(p.full_date, p.store_id,
                          p.ip_key, p.views, p.country_code, p.country_name) u)
        INSERT INTO rollup_store_country_day AS r
            (full_date, store_id, country_code, country_name, views)
        SELECT full_date, store_id, country_code, min(country_name), sum(views)::bigint
        FROM d
        GROUP BY 1, 2, 3
        ORDER BY 1, store_id IS NULL, coalesce(store_id, ''),
                 country_code IS NULL, coalesce(country_code, '')
        ON CONFLICT (full_date, (store_id IS NULL), coalesce(store_id, ''),
                     (country_code IS NULL), coalesce(country_code, ''))
        DO UPDATE SET views = r.views + EXCLUDED.views,
                      country_name = least(r.country_name, EXCLUDED.country_name);
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSIF which = 'rollup_referrer_day' THEN
        WITH p AS (DELETE FROM rollup_referrer_day_pending RETURNING *),
             g AS (SELECT u.full_date, u.referrer_url, sum(u.views)::bigint AS views
                   FROM p, unnest(p.full_date, p.referrer_url, p.views)
                           AS u(full_date, referrer_url, views)
                   GROUP BY 1, 2),
             up AS (UPDATE rollup_referrer_day r SET views = r.views + g.views FROM g
                    WHERE r.full_date = g.full_date AND r.referrer_url = g.referrer_url
                    RETURNING r.full_date, r.referrer_url),
             ins AS (INSERT INTO rollup_referrer_day AS r (full_date, referrer_url, views)
               SELECT g.full_date, g.referrer_url, g.views FROM g
               WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.full_date = g.full_date
                                   AND up.referrer_url = g.referrer_url)
               ORDER BY 1, 2
               ON CONFLICT (full_date, referrer_url) DO UPDATE SET views = r.views + EXCLUDED.views
                     RETURNING 1)
        SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM ins) INTO n;
    ELSIF which = 'rollup_browser_hour' THEN
        WITH p AS (DELETE FROM rollup_browser_hour_pending RETURNING *),
             g AS (SELECT u.full_date, u.hour, coalesce(a.browser, 'unknown') AS browser,
                          coalesce(a.os, 'unknown') AS os, sum(u.views)::bigint AS views
                   FROM p
                   CROSS JOIN unnest(p.full_date, p.hour, p.user_agent_key, p.views)
                              AS u(full_date, hour, user_agent_key, views)
                   LEFT JOIN dim_user_agent a ON a.user_agent_key = u.user_agent_key
                   GROUP BY 1, 2, 3, 4),
             up AS (UPDATE rollup_browser_hour r SET views = r.views + g.views FROM g
                    WHERE r.full_date = g.full_date AND r.hour = g.hour
                      AND r.browser = g.browser AND r.os = g.os
                    RETURNING r.full_date, r.hour, r.browser, r.os),
             ins AS (INSERT INTO rollup_browser_hour AS r (full_date, hour, browser, os, views)
               SELECT g.full_date, g.hour, g.browser, g.os, g.views FROM g
               WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.full_date = g.full_date
                                   AND up.hour = g.hour AND up.browser = g.browser AND up.os = g.os)
               ORDER BY 1, 2, 3, 4
               ON CONFLICT (full_date, hour, browser, os) DO UPDATE SET views = r.views + EXCLUDED.views
                     RETURNING 1)
        SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM ins) INTO n;
    END IF;
    RETURN n;
END
$$;

-- Each pending key moved on its own, in key order, in a subtransaction of its own; a key
-- PostgreSQL refuses for a data reason goes to rollup_rejected. Slow, and only used when
-- the bulk move failed.
CREATE OR REPLACE FUNCTION streamer_fold_rollups_by_key(which text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    total bigint := 0;
    r record;
BEGIN
    IF which = 'rollup_product_hour' THEN
        FOR r IN WITH p AS (DELETE FROM rollup_product_hour_pending RETURNING *),
             d AS (SELECT u.* FROM p, unnest(p.full_date, p.hour, p.product_key, p.views) AS u(full_date, hour, product_key, views))
                 SELECT full_date, hour, product_key, sum(views)::bigint AS views
                 FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        LOOP
            BEGIN
                INSERT INTO rollup_product_hour AS t (full_date, hour, product_key, views)
                VALUES (r.full_date, r.hour, r.product_key, r.views)
                ON CONFLICT (full_date, hour, product_key)
                DO UPDATE SET views = t.views + EXCLUDED.views;
                total := total + 1;
            EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
                INSERT INTO rollup_rejected (rollup, pending, sqlstate, message)
                VALUES ('rollup_product_hour', to_jsonb(r), SQLSTATE, SQLERRM);
            END;
        END LOOP;
    ELSIF which = 'rollup_store_country_day' THEN
        FOR r IN WITH p AS (DELETE FROM rollup_store_country_day_pending RETURNING *),
             d AS (SELECT u.* FROM p, streamer_store_country_elements(p.full_date, p.store_id,
                          p.ip_key, p.views, p.country_code, p.country_name) u)
                 SELECT full_date, store_id, country_code,
                        min(country_name) AS country_name, sum(views)::bigint AS views
                 FROM d
                 GROUP BY 1, 2, 3
                 ORDER BY 1, store_id IS NULL, coalesce(store_id, ''),
                          country_code IS NULL, coalesce(country_code, '')
        LOOP
            BEGIN
                INSERT INTO rollup_store_country_day AS t
                    (full_date, store_id, country_code, country_name, views)
                VALUES (r.full_date, r.store_id, r.country_code, r.country_name, r.views)
                ON CONFLICT (full_date, (store_id IS NULL), coalesce(store_id, ''),
                             (country_code IS NULL), coalesce(country_code, ''))
                DO UPDATE SET views = t.views + EXCLUDED.views,
                              country_name = least(t.country_name, EXCLUDED.country_name);
                total := total + 1;
            EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
                INSERT INTO rollup_rejected (rollup, pending, sqlstate, message)
                VALUES ('rollup_store_country_day', to_jsonb(r), SQLSTATE, SQLERRM);
            END;
        END LOOP;
    ELSIF which = 'rollup_referrer_day' THEN
        FOR r IN WITH p AS (DELETE FROM rollup_referrer_day_pending RETURNING *),
             d AS (SELECT u.* FROM p, unnest(p.full_date, p.referrer_url, p.views) AS u(full_date, referrer_url, views))
                 SELECT full_date, referrer_url, sum(views)::bigint AS views
                 FROM d GROUP BY 1, 2 ORDER BY 1, 2
        LOOP
            BEGIN
                INSERT INTO rollup_referrer_day AS t (full_date, referrer_url, views)
                VALUES (r.full_date, r.referrer_url, r.views)
                ON CONFLICT (full_date, referrer_url)
                DO UPDATE SET views = t.views + EXCLUDED.views;
                total := total + 1;
            EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
                INSERT INTO rollup_rejected (rollup, pending, sqlstate, message)
                VALUES ('rollup_referrer_day', to_jsonb(r), SQLSTATE, SQLERRM);
            END;
        END LOOP;
    ELSIF which = 'rollup_browser_hour' THEN
        FOR r IN WITH p AS (DELETE FROM rollup_browser_hour_pending RETURNING *),
             d AS (SELECT u.* FROM p, unnest(p.full_date, p.hour, p.user_agent_key, p.views) AS u(full_date, hour, user_agent_key, views))
                 SELECT d.full_date, d.hour, coalesce(a.browser, 'unknown') AS browser,
                        coalesce(a.os, 'unknown') AS os, sum(d.views)::bigint AS views
                 FROM d LEFT JOIN dim_user_agent a ON a.user_agent_key = d.user_agent_key
                 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        LOOP
            BEGIN
                INSERT INTO rollup_browser_hour AS t (full_date, hour, browser, os, views)
                VALUES (r.full_date, r.hour, r.browser, r.os, r.views)
                ON CONFLICT (full_date, hour, browser, os)
                DO UPDATE SET views = t.views + EXCLUDED.views;
                total := total + 1;
            EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
                INSERT INTO rollup_rejected (rollup, pending, sqlstate, message)
                VALUES ('rollup_browser_hour', to_jsonb(r), SQLSTATE, SQLERRM);
            END;
        END LOOP;
    END IF;
    RETURN total;
END
$$;

-- The rollup keys, defined here only: the four appends that count sign * (the rows of src)
-- in the pending tables, one row of parallel arrays each (one row per key cost a loader's
-- batch of 5,000 facts some 5,700 inserted, deleted and vacuumed rows, a third of its
-- PostgreSQL time), by the raw keys of fact_sales (country, browser and OS are resolved
-- when folded). src is a FROM item written by this file's own functions only (a trigger's
-- transition table, or a block range of fact_sales for a rebuild); $1 is the sign.
CREATE OR REPLACE FUNCTION streamer_rollup_statements(src text)
RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $$
    VALUES
    (format($q$
        INSERT INTO rollup_product_hour_pending (full_date, hour, product_key, views)
        SELECT array_agg(full_date), array_agg(hour), array_agg(product_key), array_agg(views)
        FROM (SELECT full_date, extract(hour FROM full_time)::smallint AS hour, product_key,
                     $1::bigint * count(*) AS views
              FROM %s WHERE product_key IS NOT NULL
              GROUP BY 1, 2, 3) g
        HAVING count(*) > 0
    $q$, src)),
    (format($q$
        INSERT INTO rollup_store_country_day_pending (full_date, store_id, ip_key, views)
        SELECT array_agg(full_date), array_agg(store_id), array_agg(ip_key), array_agg(views)
        FROM (SELECT full_date, store_id, ip_key, $1::bigint * count(*) AS views
              FROM %s GROUP BY 1, 2, 3) g
        HAVING count(*) > 0
    $q$, src)),
    (format($q$
        INSERT INTO rollup_referrer_day_pending (full_date, referrer_url, views)
        SELECT array_agg(full_date), array_agg(referrer_url), array_agg(views)
        FROM (SELECT full_date, referrer_url, $1::bigint * count(*) AS views
              FROM %s WHERE referrer_url IS NOT NULL
              GROUP BY 1, 2) g
        HAVING count(*) > 0
    $q$, src)),
    (format($q$
        INSERT INTO rollup_browser_hour_pending (full_date, hour, user_agent_key, views)
        SELECT array_agg(full_date), array_agg(hour), array_agg(user_agent_key), array_agg(views)
        FROM (SELECT full_date, extract(hour FROM full_time)::smallint AS hour, user_agent_key,
                     $1::bigint * count(*) AS views
              FROM %s GROUP BY 1, 2, 3) g
        HAVING count(*) > 0
    $q$, src))
$$;

CREATE OR REPLACE FUNCTION streamer_rollup_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    q text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE rollup_product_hour, rollup_product_hour_pending, rollup_store_country_day,
                 rollup_store_country_day_pending, rollup_referrer_day,
                 rollup_referrer_day_pending, rollup_browser_hour, rollup_browser_hour_pending;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        FOR q IN SELECT streamer_rollup_statements('old_rows') LOOP
            EXECUTE q USING -1;
        END LOOP;
    END IF;
    IF TG_OP = 'INSERT' AND current_setting('streamer.rollups_counted', true) = 'on' THEN
        -- a streamer loader's transaction: it appends the counts of the rows it inserted
        -- itself, by the same keys (src/sink/rollup.rs)
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        FOR q IN SELECT streamer_rollup_statements('new_rows') LOOP
            EXECUTE q USING 1;
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

-- One trigger per event (a trigger with transition tables serves one event), created only
-- when missing, so a warmup does not lock fact_sales against running loaders.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'fact_sales'::regclass AND tgname = 'fact_sales_rollup_insert') THEN
        CREATE TRIGGER fact_sales_rollup_insert AFTER INSERT ON fact_sales
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION streamer_rollup_trigger();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'fact_sales'::regclass AND tgname = 'fact_sales_rollup_delete') THEN
        CREATE TRIGGER fact_sales_rollup_delete AFTER DELETE ON fact_sales
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION streamer_rollup_trigger();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'fact_sales'::regclass AND tgname = 'fact_sales_rollup_update') THEN
        CREATE TRIGGER fact_sales_rollup_update AFTER UPDATE ON fact_sales
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION streamer_rollup_trigger();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'fact_sales'::regclass AND tgname = 'fact_sales_rollup_truncate') THEN
        CREATE TRIGGER fact_sales_rollup_truncate AFTER TRUNCATE ON fact_sales
            FOR EACH STATEMENT EXECUTE FUNCTION streamer_rollup_trigger();
    END IF;
END
$$;

-- Recompute the rollups from fact_sales (after an upgrade that added them, or after a change
-- of dim_location); blocks writers to fact_sales until the calling transaction ends.
-- Returns the number of fact rows counted. The table is counted in block ranges of 64 MB
-- (a TID range scan each, one pass in all), each folded at once, so no pending array grows
-- with the table.
CREATE OR REPLACE FUNCTION streamer_rebuild_rollups() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    q text;
    total bigint;
    blocks bigint;
    step constant bigint := 8192;
    first bigint := 0;
BEGIN
    LOCK TABLE fact_sales IN SHARE MODE;
    TRUNCATE rollup_product_hour, rollup_product_hour_pending, rollup_store_country_day,
             rollup_store_country_day_pending, rollup_referrer_day, rollup_referrer_day_pending,
             rollup_browser_hour, rollup_browser_hour_pending;
    blocks := pg_relation_size('fact_sales') / current_setting('block_size')::bigint;
    WHILE first < blocks LOOP
        FOR q IN SELECT streamer_rollup_statements(format(
                '(SELECT * FROM fact_sales WHERE ctid >= ''(%s,0)''::tid AND ctid < ''(%s,0)''::tid) AS f',
                first, first + step)) LOOP
            EXECUTE q USING 1;
        END LOOP;
        PERFORM streamer_fold_rollups();
        first := first + step;
    END LOOP;
    SELECT coalesce(sum(views), 0) INTO total FROM rollup_store_country_day;
    RETURN total;
END
$$;

-- Whether the rollups miss facts: none counted while fact_sales has rows (the first warmup
-- after the upgrade that added them).
CREATE OR REPLACE FUNCTION streamer_rollups_missing() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM rollup_store_country_day)
       AND NOT EXISTS (SELECT 1 FROM rollup_store_country_day_pending)
       AND EXISTS (SELECT 1 FROM fact_sales);
$$;


-- Reports (contract §7) ----------------------------------------------------------------------
-- Six functions for any BI tool, e.g. `SELECT * FROM report_top_products('2020-01-02')`;
-- without an argument they report the current UTC day. A view is one fact row (one
-- product-view event). Every report has a `rank` column (1 = most views; for the hourly
-- reports the rank of the series) and orders its rows by it, ties broken by key in byte order
-- (COLLATE "C", so the order is the same on any database locale); sort on `rank`
-- (then `hour`) when a tool re-sorts. They read the rollups above, never fact_sales.
-- Conventions:
-- - a fact without a known country (no ip, private or unknown address) counts under
--   country_code NULL, country_name 'unknown', ranked like any country (so a missing GeoIP
--   database shows up instead of hiding views); among equal counts it comes last;
-- - a fact without a known browser or OS counts under 'unknown';
-- - facts without product_key, referrer or store_id are left out of the reports that
--   group by them.
-- The report functions are created anew by every warmup (CREATE OR REPLACE cannot change
-- a function's result columns), so a database of any earlier version gets these.
DROP FUNCTION IF EXISTS report_day_totals(date), report_top_products(date),
    report_top_countries(date), report_top_referrers(date), report_store_performance(date),
    report_hourly_product_views(date), report_hourly_browser_os(date);

-- The day's totals: views (every fact row) and distinct products viewed.
CREATE OR REPLACE FUNCTION report_day_totals(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (views bigint, products bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (SELECT coalesce(sum(r.views), 0)::bigint FROM rollup_store_country_day_all r
            WHERE r.full_date = d),
           (SELECT count(*) FROM (SELECT r.product_key FROM rollup_product_hour_all r
                                  WHERE r.full_date = d
                                  GROUP BY r.product_key HAVING sum(r.views) > 0) p)
$$;

-- A readable product name from a product URL's slug, for products no catalog names:
-- the last path segment, its extension and a trailing SKU token (`-skug870198`) dropped,
-- dashes and underscores as spaces, title case:
-- https://www.glamira.de/glamira-armband-seldor-skug870198.html -> Glamira Armband Seldor.
-- NULL when the URL has no such segment or it holds no letter (`/id/110474`).
CREATE OR REPLACE FUNCTION streamer_product_name(url text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n ~ '[[:alpha:]]' THEN n END
    FROM (SELECT initcap(btrim(regexp_replace(
                     regexp_replace(
                         regexp_replace(
                             substring(url FROM
                                 '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*/(?:[^?#]*/)?([^/?#]+)'),
                             '\.[A-Za-z0-9]{1,5}$', ''),
                         '(^|[-_])sku[A-Za-z]*[0-9][A-Za-z0-9]*$', '', 'i'),
                     '[-_+ ]+', ' ', 'g'))) AS n) s
$$;

-- 1. Top 10 products by views. `name` is the catalog's (name_source 'catalog'), else one
-- derived from the product URL (name_source 'derived'), else NULL.
CREATE OR REPLACE FUNCTION report_top_products(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, product_key text, name text, current_url text, views bigint,
               name_source text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT t.rnk, t.key, coalesce(p.name, streamer_product_name(p.current_url)),
           p.current_url, t.n,
           CASE WHEN p.name IS NOT NULL THEN 'catalog'
                WHEN streamer_product_name(p.current_url) IS NOT NULL THEN 'derived' END
    FROM (SELECT r.product_key AS key, sum(r.views)::bigint AS n,
                 row_number() OVER (ORDER BY sum(r.views) DESC,
                                             r.product_key COLLATE "C")::integer AS rnk
          FROM rollup_product_hour_all r
          WHERE r.full_date = d
          GROUP BY r.product_key
          HAVING sum(r.views) > 0
          ORDER BY rnk
          LIMIT 10) t
    LEFT JOIN dim_product p ON p.product_key = t.key
    ORDER BY t.rnk
$$;

-- 2. Top 10 countries by views (unknown geography: country_code NULL, name 'unknown').
CREATE OR REPLACE FUNCTION report_top_countries(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, country_code text, country_name text, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_number() OVER (ORDER BY sum(r.views) DESC,
                                       r.country_code COLLATE "C" NULLS LAST)::integer,
           r.country_code,
           CASE WHEN r.country_code IS NULL THEN 'unknown'
                ELSE coalesce(min(r.country_name), r.country_code) END,
           sum(r.views)::bigint
    FROM rollup_store_country_day_all r
    WHERE r.full_date = d
    GROUP BY r.country_code
    HAVING sum(r.views) > 0
    ORDER BY 1
    LIMIT 10
$$;

-- 3. Top 5 referrer hosts by views (facts without a referrer are left out).
CREATE OR REPLACE FUNCTION report_top_referrers(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, referrer_host text, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_number() OVER (ORDER BY sum(r.views) DESC, r.referrer_url COLLATE "C")::integer,
           r.referrer_url,
           sum(r.views)::bigint
    FROM rollup_referrer_day_all r
    WHERE r.full_date = d
    GROUP BY r.referrer_url
    HAVING sum(r.views) > 0
    ORDER BY 1
    LIMIT 5
$$;

-- 4. Store performance by country: the 20 (store, country) pairs with the most views.
-- store_share = percentage of the store's views that day (all countries) coming from this
-- country, one decimal. Facts without store_id are left out; unknown geography as in
-- report 2.
CREATE OR REPLACE FUNCTION report_store_performance(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, store_id text, country_code text, country_name text,
               views bigint, store_share double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_number() OVER (ORDER BY r.n DESC, r.store_id COLLATE "C",
                                       r.country_code COLLATE "C" NULLS LAST)::integer,
           r.store_id,
           r.country_code,
           CASE WHEN r.country_code IS NULL THEN 'unknown'
                ELSE coalesce(r.country_name, r.country_code) END,
           r.n,
           round(100.0 * r.n / sum(r.n) OVER (PARTITION BY r.store_id), 1)::double precision
    FROM (SELECT r.store_id, r.country_code, min(r.country_name) AS country_name,
                 sum(r.views)::bigint AS n
          FROM rollup_store_country_day_all r
          WHERE r.full_date = d AND r.store_id IS NOT NULL
          GROUP BY r.store_id, r.country_code
          HAVING sum(r.views) > 0) r
    ORDER BY 1
    LIMIT 20
$$;

-- 5. Hourly views (UTC hours 0-23) of the day's top 10 products (report 1's products and
-- ranks): 24 rows per product, hours without views included with 0, so a chart needs no
-- gap filling.
CREATE OR REPLACE FUNCTION report_hourly_product_views(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, product_key text, hour integer, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH top AS (
        SELECT t.rank, t.product_key FROM report_top_products(d) t
    ), counts AS (
        -- one pass over the day's rows (the pending ones have no index)
        SELECT r.product_key, r.hour::integer AS h, sum(r.views)::bigint AS n
        FROM rollup_product_hour_all r
        WHERE r.full_date = d AND r.product_key IN (SELECT top.product_key FROM top)
        GROUP BY 1, 2
    )
    SELECT top.rank, top.product_key, hours.h, coalesce(c.n, 0)
    FROM top
    CROSS JOIN generate_series(0, 23) AS hours(h)
    LEFT JOIN counts c ON c.product_key = top.product_key AND c.h = hours.h
    ORDER BY top.rank, hours.h
$$;

-- 6. Hourly views (UTC hours 0-23) by browser and OS: the day's 5 browser/OS pairs with the
-- most views (ranks 1-5), the other pairs summed as browser 'other', os 'other' (rank 6);
-- 24 rows per pair, hours without views included with 0.
CREATE OR REPLACE FUNCTION report_hourly_browser_os(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, browser text, os text, hour integer, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH day AS (
        SELECT r.browser, r.os, r.hour::integer AS h, sum(r.views)::bigint AS n
        FROM rollup_browser_hour_all r
        WHERE r.full_date = d
        GROUP BY 1, 2, 3
        HAVING sum(r.views) > 0
    ), pairs AS (
        SELECT day.browser, day.os,
               row_number() OVER (ORDER BY sum(day.n) DESC, day.browser COLLATE "C",
                                           day.os COLLATE "C")::integer AS rnk
        FROM day
        GROUP BY day.browser, day.os
    ), series AS (
        SELECT DISTINCT least(p.rnk, 6) AS rnk,
               CASE WHEN p.rnk <= 5 THEN p.browser ELSE 'other' END AS browser,
               CASE WHEN p.rnk <= 5 THEN p.os ELSE 'other' END AS os
        FROM pairs p
    ), counts AS (
        SELECT least(p.rnk, 6) AS rnk, day.h, sum(day.n)::bigint AS n
        FROM day JOIN pairs p ON p.browser = day.browser AND p.os = day.os
        GROUP BY 1, 2
    )
    SELECT s.rnk, s.browser, s.os, hours.h, coalesce(c.n, 0)
    FROM series s
    CROSS JOIN generate_series(0, 23) AS hours(h)
    LEFT JOIN counts c ON c.rnk = s.rnk AND c.h = hours.h
    ORDER BY s.rnk, hours.h
$$;
