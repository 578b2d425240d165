//! Poison messages mixed into valid traffic (issue 16, contract §4): values past every limit of
//! the transform, U+0000, and values the transform lets through but a database narrowed by
//! hand refuses (the loader's bisecting safety net), in both modes: every valid fact loaded
//! exactly, every poison message a dead letter naming its field or carrying PostgreSQL's
//! SQLSTATE and message, nothing left pending by the rollup folder, exit 0.

use std::collections::BTreeMap;

use crate::harness;
use crate::harness::check::{
    assert_rollups_folded, assert_tables, cfg_path, drain, produced_ends, warmup,
};
use crate::harness::events::{data_set, DataSet};
use crate::harness::{Broker, Record, TempDir, TestDb};

/// 4,000 bytes that do not compress (a B-tree index row of them is over PostgreSQL's
/// ~2.7 kB limit even compressed).
fn incompressible(len: usize) -> String {
    let mut rng = harness::events::Rng::new(99);
    (0..len)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

/// (member JSON appended to a minimal event, reason text the dead letter must start with)
fn poison_members() -> Vec<(String, String)> {
    let long = incompressible(4000);
    let too_long = |field: &str, bytes: usize, limit: usize| {
        format!("too_long: `{field}` is {bytes} bytes, longer than its limit of {limit} bytes")
    };
    vec![
        (
            format!(r#""product_id":"{long}""#),
            too_long("product_id", 4000, 255),
        ),
        (
            format!(r#""product_id":{}"#, "9".repeat(3000)),
            too_long("product_id", 3000, 255),
        ),
        (
            format!(r#""store_id":"{}""#, &long[..300]),
            too_long("store_id", 300, 255),
        ),
        (
            format!(r#""store_id":"{}""#, "é".repeat(200)),
            too_long("store_id", 400, 255),
        ),
        (
            format!(r#""referrer_url":"https://{}.com/x""#, &long[..400]),
            too_long("referrer_url", 404, 255),
        ),
        (
            format!(r#""current_url":"https://www.glamira.de/{long}""#),
            too_long("current_url", 4023, 2048),
        ),
        (format!(r#""ip":"{long}""#), too_long("ip", 4000, 255)),
        (
            format!(r#""user_agent":"Mozilla/5.0 {long}""#),
            too_long("user_agent", 4012, 2048),
        ),
        (
            r#""user_agent":"Mozilla\u0000""#.to_owned(),
            "nul_character: `user_agent`".to_owned(),
        ),
        (
            r#""referrer_url":"https://a\u0000b.de/""#.to_owned(),
            "nul_character: `referrer_url`".to_owned(),
        ),
        (
            r#""current_url":"https://www.glamira.de/\u0000""#.to_owned(),
            "nul_character: `current_url`".to_owned(),
        ),
    ]
}

/// `members` as events (the id too long is its own case), each interleaved into `ds`'s
/// messages every `every` messages; returns the messages and (event id → expected reason).
fn mix(
    ds: &mut DataSet,
    members: &[(String, String)],
    every: usize,
) -> (Vec<Record>, BTreeMap<String, String>) {
    let mut poison: Vec<(String, String, String)> = members
        .iter()
        .enumerate()
        .map(|(i, (member, reason))| {
            let id = format!("poison-{i:02}");
            let json = format!(r#"{{"id":"{id}","time_stamp":1591266092,{member}}}"#);
            (id, json, reason.clone())
        })
        .collect();
    let long_id = "i".repeat(1000);
    poison.push((
        long_id.clone(),
        format!(r#"{{"id":"{long_id}","time_stamp":1591266092}}"#),
        "too_long: `id` is 1000 bytes, longer than its limit of 255 bytes".to_owned(),
    ));
    let mut out = Vec::new();
    let mut expected = BTreeMap::new();
    let mut p = poison.into_iter();
    for (i, m) in ds.messages.drain(..).enumerate() {
        if i % every == every / 2 {
            if let Some((id, json, reason)) = p.next() {
                let code = reason.split(':').next().unwrap_or_default().to_owned();
                *ds.dead
                    .entry(if code == "too_long" {
                        "too_long"
                    } else if code == "nul_character" {
                        "nul_character"
                    } else {
                        "rejected_by_postgres"
                    })
                    .or_insert(0) += 1;
                out.push((Some(id.clone().into_bytes()), Some(json.into_bytes())));
                expected.insert(id, reason);
            }
        }
        out.push(m);
    }
    assert!(p.next().is_none(), "every poison message placed");
    (out, expected)
}

/// The reason of the dead letter of each poison event, by its `id` (read back from the
/// stored payload).
fn poison_reasons(db: &TestDb) -> BTreeMap<String, String> {
    db.client()
        .query(
            "SELECT substring(convert_from(payload, 'UTF8') FROM '^\\{\"id\":\"([^\"]*)\"'), \
                    reason FROM dead_letter \
             WHERE position('{\"id\":\"poison-'::bytea IN payload) = 1 \
                OR position('{\"id\":\"iii'::bytea IN payload) = 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn assert_poison(db: &TestDb, expected: &BTreeMap<String, String>) {
    let got = poison_reasons(db);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every poison event is a dead letter"
    );
    for (id, want) in expected {
        let reason = &got[id];
        assert!(
            reason.starts_with(want.as_str()),
            "{id}: reason {reason:?} does not start with {want:?}"
        );
    }
}

fn poison_in_mode(mode: &str) {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("poison");
    let topic = harness::unique_name("poison");
    broker.create_topic(&topic, 3);
    let mut ds = data_set(900, 60, 1, 16);
    let (messages, expected) = mix(&mut ds, &poison_members(), 40);
    let positions = broker.produce(&topic, &messages);
    let ends = produced_ends(&positions);
    let cfg = cfg_path(
        &dir,
        broker,
        &db,
        &topic,
        "[pipeline]\nbatch_max_messages = 200\nbatch_max_latency_ms = 50\n",
    );
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);
    drain(dir.path(), &cfg, &envs);
    assert_tables(&db, &ds, &ends, &topic);
    assert_poison(&db, &expected);
    assert_rollups_folded(&db);
    assert_eq!(db.count("rollup_rejected"), 0, "no rollup key refused");
}

#[test]
fn poison_values_are_dead_letters_naming_the_field_partition_mode() {
    poison_in_mode("partition");
}

#[test]
fn poison_values_are_dead_letters_naming_the_field_batch_mode() {
    poison_in_mode("batch");
}

/// Values the transform accepts but this database refuses: columns narrowed and a check
/// constraint added by hand after warmup (SQLSTATE 22001 in fact_sales and in dim_product,
/// 23514). The loader bisects each batch down to the refused messages.
fn refused_in_mode(mode: &str) {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("poison-refused");
    let topic = harness::unique_name("refused");
    broker.create_topic(&topic, 2);
    let cfg = cfg_path(
        &dir,
        broker,
        &db,
        &topic,
        "[pipeline]\nbatch_max_messages = 300\nbatch_max_latency_ms = 50\n",
    );
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);
    db.client()
        .batch_execute(
            "ALTER TABLE fact_sales ALTER COLUMN store_id TYPE varchar(20); \
             ALTER TABLE dim_product ALTER COLUMN product_key TYPE varchar(24); \
             ALTER TABLE fact_sales ADD CONSTRAINT no_evil_source \
                 CHECK (utm_source IS DISTINCT FROM 'evil')",
        )
        .unwrap();
    let members = vec![
        (
            format!(r#""store_id":"{}""#, "s".repeat(30)),
            "rejected_by_postgres: writing fact_sales: value too long for type character \
             varying(20) (SQLSTATE 22001"
                .to_owned(),
        ),
        (
            format!(r#""product_id":"{}""#, "p".repeat(40)),
            "rejected_by_postgres: writing dim_product: value too long for type character \
             varying(24) (SQLSTATE 22001"
                .to_owned(),
        ),
        (
            r#""utm_source":"evil""#.to_owned(),
            "rejected_by_postgres: writing fact_sales: new row for relation \"fact_sales\" \
             violates check constraint \"no_evil_source\" (SQLSTATE 23514"
                .to_owned(),
        ),
        (
            format!(r#""store_id":"{}""#, "t".repeat(21)),
            "rejected_by_postgres: writing fact_sales: value too long for type character \
             varying(20) (SQLSTATE 22001"
                .to_owned(),
        ),
    ];
    let mut ds = data_set(1200, 40, 1, 61);
    let (mut messages, mut expected) = mix(&mut ds, &members, 150);
    // the long id of `mix` is a transform dead letter, expected as such
    expected.retain(|id, _| id.starts_with("poison-"));
    messages.retain(|(k, _)| k.as_deref() != Some("i".repeat(1000).as_bytes()));
    *ds.dead.get_mut("too_long").unwrap() -= 1;
    if ds.dead["too_long"] == 0 {
        ds.dead.remove("too_long");
    }
    let positions = broker.produce(&topic, &messages);
    let ends = produced_ends(&positions);
    let out = drain(dir.path(), &cfg, &envs);
    assert!(out.contains("isolating the refused messages"), "{out}");
    assert_tables(&db, &ds, &ends, &topic);
    assert_poison(&db, &expected);
    assert_rollups_folded(&db);
}

#[test]
fn rows_postgres_refuses_are_isolated_partition_mode() {
    refused_in_mode("partition");
}

#[test]
fn rows_postgres_refuses_are_isolated_batch_mode() {
    refused_in_mode("batch");
}
