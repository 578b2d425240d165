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

-- dim_date rows for any range of days; warmup fills 2010-2030, the writer adds others.
CREATE OR REPLACE FUNCTION streamer_fill_dim_date(first_day date, last_day date)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO dim_date
    SELECT d::date,
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
    FROM generate_series(first_day, last_day, interval '1 day') AS d
    ON CONFLICT (full_date) DO NOTHING;
$$;

CREATE OR REPLACE FUNCTION streamer_add_dates(days date[])
RETURNS void LANGUAGE sql AS $$
    SELECT streamer_fill_dim_date(d, d) FROM unnest(days) AS d;
$$;
