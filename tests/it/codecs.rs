//! Compressed record batches: every codec Kafka has loads exactly, and a batch that cannot
//! be decompressed stops the run with an error naming partition and offset, after what
//! came before it is committed, instead of retrying it forever or skipping it.

use crate::harness::check::{assert_tables, count, produced_ends, stored_offsets};
use crate::harness::events::data_set;
use crate::harness::{unique_name, Broker};
use crate::kafka::{events, load_in_both_modes, plaintext, run_in_both_modes};

/// Producers compress record batches with any of Kafka's codecs (zstd and lz4 are the
/// usual choices of Java clients): one topic whose partitions hold batches of all four,
/// interleaved with uncompressed ones, loads exactly in both modes.
#[test]
fn record_batches_in_every_compression_codec_load_exactly() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_codecs");
    broker.create_topic(&topic, 2);
    let ds = data_set(3_000, 150, 3, 27);
    let mut positions = Vec::new();
    let codecs = ["zstd", "lz4", "none", "snappy", "gzip"];
    for (i, chunk) in ds.messages.chunks(400).enumerate() {
        positions.extend(broker.produce_compressed(&topic, chunk, codecs[i % codecs.len()]));
    }
    let ends = produced_ends(&positions);
    for (db, _) in load_in_both_modes("codecs", &plaintext(broker), &topic) {
        assert_tables(&db, &ds, &ends, &topic);
    }
}

/// (position in the segment file, base offset, length) of each record batch in `segment`
fn batches(segment: &[u8]) -> Vec<(usize, i64, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(header) = segment.get(at..at + 12) {
        let base = i64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(header[8..].try_into().expect("4 bytes"));
        let len = usize::try_from(len).expect("batch length");
        out.push((at, base, len));
        at += 12 + len;
    }
    out
}

/// A gzip batch corrupted on the broker's disk (librdkafka does not check CRCs by
/// default, so it fails only to decompress it): each mode commits the batches before it,
/// then exits 1 naming the partition and the offset, and never reads past it.
#[test]
fn an_undecodable_batch_stops_the_run_after_what_came_before() {
    let broker = Broker::start();
    let topic = unique_name("product_view_corrupt");
    broker.create_topic(&topic, 1);
    let evs = events(600, 28);
    // three batches of 200 (each call flushes)
    for chunk in evs.chunks(200) {
        broker.produce_compressed(&topic, chunk, "gzip");
    }
    let path = broker.first_segment(&topic, 0);
    let mut segment = std::fs::read(&path).expect("reading the segment");
    let found = batches(&segment);
    assert_eq!(
        found.iter().map(|b| b.1).collect::<Vec<_>>(),
        [0, 200, 400],
        "record batches of {path:?}"
    );
    // flip bytes in the middle of the second batch's compressed records (past the 61-byte
    // batch header)
    let (at, _, len) = found[1];
    let middle = at + 61 + (len + 12 - 61) / 2;
    for b in &mut segment[middle..middle + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&path, &segment).expect("writing the segment");

    for (mode, db, code, out) in run_in_both_modes("corrupt", &plaintext(&broker), &topic) {
        assert_eq!(code, 1, "{mode}: exit code:\n{out}");
        assert!(
            out.contains(&format!("reading {topic}/0")) && out.contains("at offset 200"),
            "{mode}: the error names partition and offset:\n{out}"
        );
        assert_eq!(count(&db, "fact_sales"), 200, "{mode}: the first batch");
        assert_eq!(
            stored_offsets(&db, &topic).get(&0),
            Some(&200),
            "{mode}: stored offset"
        );
    }
}
