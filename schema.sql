-- streamer star schema (SPEC 5-6). Idempotent: warmup runs it on every start.
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

-- Messages that could not become a fact row (SPEC 4), committed with their batch.
CREATE TABLE IF NOT EXISTS dead_letter (
    id            bigserial PRIMARY KEY,
    topic         text    NOT NULL,
    partition     integer NOT NULL,
    kafka_offset  bigint  NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    reason        text    NOT NULL,
    payload       bytea
);

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

-- Reports (SPEC 7) ----------------------------------------------------------------------
-- Six functions for any BI tool, e.g. `SELECT * FROM report_top_products('2020-01-02')`;
-- without an argument they report the current UTC day. A view is one fact row (one
-- product-view event). Every report has a `rank` column (1 = most views; for the hourly
-- reports the rank of the series) and orders its rows by it, ties broken by key in byte order
-- (COLLATE "C", so the order is the same on any database locale); sort on `rank`
-- (then `hour`) when a tool re-sorts. Conventions:
-- - a fact without a known country (no ip, private or unknown address) counts under
--   country_code NULL, country_name 'unknown', ranked like any country (so a missing GeoIP
--   database shows up instead of hiding views); among equal counts it comes last;
-- - a fact without a known browser or OS counts under 'unknown';
-- - facts without product_key, referrer or store_id are left out of the reports that
--   group by them.
-- Changing a function's columns later needs a DROP FUNCTION first (CREATE OR REPLACE cannot
-- change a result type).

-- The only index the reports need: every report reads one day of facts. full_date first, so
-- each report is a range scan over that day; the INCLUDEd columns are every column the
-- reports read, so once autovacuum has marked the pages all-visible (it does so for
-- insert-only tables too) the day is read from the index alone, without touching the wide
-- heap rows (URLs, option, e-mail ...). One index rather than one per report: each extra
-- index is one more insert per row in the loader's COPY. The dimension lookups use the
-- dimensions' primary keys. On an existing database the first warmup after an upgrade builds
-- it (blocking writes to fact_sales meanwhile); afterwards IF NOT EXISTS makes it free.
CREATE INDEX IF NOT EXISTS fact_sales_report_idx ON fact_sales (full_date)
    INCLUDE (full_time, product_key, store_id, ip_key, user_agent_key, referrer_url);

-- 1. Top 10 products by views.
CREATE OR REPLACE FUNCTION report_top_products(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, product_key text, name text, current_url text, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT t.rnk, t.key, p.name, p.current_url, t.n
    FROM (SELECT f.product_key AS key, count(*) AS n,
                 row_number() OVER (ORDER BY count(*) DESC, f.product_key COLLATE "C")::integer AS rnk
          FROM fact_sales f
          WHERE f.full_date = d AND f.product_key IS NOT NULL
          GROUP BY f.product_key
          ORDER BY rnk
          LIMIT 10) t
    LEFT JOIN dim_product p ON p.product_key = t.key
    ORDER BY t.rnk
$$;

-- 2. Top 10 countries by views (unknown geography: country_code NULL, name 'unknown').
CREATE OR REPLACE FUNCTION report_top_countries(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, country_code text, country_name text, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_number() OVER (ORDER BY count(*) DESC, l.country_code COLLATE "C" NULLS LAST)::integer,
           l.country_code,
           CASE WHEN l.country_code IS NULL THEN 'unknown'
                ELSE coalesce(min(l.country_name), l.country_code) END,
           count(*)
    FROM fact_sales f
    LEFT JOIN dim_location l ON l.ip_key = f.ip_key
    WHERE f.full_date = d
    GROUP BY l.country_code
    ORDER BY 1
    LIMIT 10
$$;

-- 3. Top 5 referrer hosts by views (facts without a referrer are left out).
CREATE OR REPLACE FUNCTION report_top_referrers(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, referrer_host text, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_number() OVER (ORDER BY count(*) DESC, f.referrer_url COLLATE "C")::integer,
           f.referrer_url,
           count(*)
    FROM fact_sales f
    WHERE f.full_date = d AND f.referrer_url IS NOT NULL
    GROUP BY f.referrer_url
    ORDER BY 1
    LIMIT 5
$$;

-- 4. Store performance by country: the 20 (store, country) pairs with the most views.
-- products = distinct products viewed; store_share = percentage of the store's views that
-- day (all countries) coming from this country, one decimal. Facts without store_id are
-- left out; unknown geography as in report 2.
CREATE OR REPLACE FUNCTION report_store_performance(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, store_id text, country_code text, country_name text,
               views bigint, products bigint, store_share double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT row_number() OVER (ORDER BY s.n DESC, s.store_id COLLATE "C",
                                       s.country_code COLLATE "C" NULLS LAST)::integer,
           s.store_id, s.country_code, s.country_name, s.n, s.products,
           round(100.0 * s.n / sum(s.n) OVER (PARTITION BY s.store_id), 1)::double precision
    FROM (-- (store, country, product) groups first: hash aggregates, no count(DISTINCT) sort
          SELECT p.store_id, p.country_code,
                 CASE WHEN p.country_code IS NULL THEN 'unknown'
                      ELSE coalesce(min(p.country_name), p.country_code) END AS country_name,
                 sum(p.n)::bigint AS n,
                 count(p.product_key) AS products
          FROM (SELECT f.store_id, l.country_code, min(l.country_name) AS country_name,
                       f.product_key, count(*) AS n
                FROM fact_sales f
                LEFT JOIN dim_location l ON l.ip_key = f.ip_key
                WHERE f.full_date = d AND f.store_id IS NOT NULL
                GROUP BY f.store_id, l.country_code, f.product_key) p
          GROUP BY p.store_id, p.country_code) s
    ORDER BY 1
    LIMIT 20
$$;

-- 5. Hourly views (UTC hours 0-23) of the day's top 10 products (report 1's products and
-- ranks): 24 rows per product, hours without views included with 0, so a chart needs no
-- gap filling.
CREATE OR REPLACE FUNCTION report_hourly_product_views(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, product_key text, hour integer, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH day AS (
        SELECT f.product_key, extract(hour FROM f.full_time)::integer AS h, count(*) AS n
        FROM fact_sales f
        WHERE f.full_date = d AND f.product_key IS NOT NULL
        GROUP BY 1, 2
    ), top AS (
        SELECT day.product_key,
               row_number() OVER (ORDER BY sum(day.n) DESC, day.product_key COLLATE "C")::integer AS rnk
        FROM day
        GROUP BY day.product_key
        ORDER BY rnk
        LIMIT 10
    )
    SELECT top.rnk, top.product_key, hours.h, coalesce(day.n, 0)
    FROM top
    CROSS JOIN generate_series(0, 23) AS hours(h)
    LEFT JOIN day ON day.product_key = top.product_key AND day.h = hours.h
    ORDER BY top.rnk, hours.h
$$;

-- 6. Hourly views (UTC hours 0-23) by browser and OS: the day's 5 browser/OS pairs with the
-- most views (ranks 1-5), the other pairs summed as browser 'other', os 'other' (rank 6);
-- 24 rows per pair, hours without views included with 0.
CREATE OR REPLACE FUNCTION report_hourly_browser_os(d date DEFAULT (now() AT TIME ZONE 'utc')::date)
RETURNS TABLE (rank integer, browser text, os text, hour integer, views bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH day AS (
        SELECT coalesce(u.browser, 'unknown') AS browser, coalesce(u.os, 'unknown') AS os,
               extract(hour FROM f.full_time)::integer AS h, count(*) AS n
        FROM fact_sales f
        LEFT JOIN dim_user_agent u ON u.user_agent_key = f.user_agent_key
        WHERE f.full_date = d
        GROUP BY 1, 2, 3
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
