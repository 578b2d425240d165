//! Geography with maxminddb: owns the opened `.mmdb` files and the reading of both record
//! layouts (MaxMind GeoIP2/GeoLite2-City and ip-location-db's flat DB-IP Lite); promises
//! that a lookup never fails: unparsable, private, reserved, loopback or unknown addresses
//! give an all-`None` [`Location`]. `country_name` comes from celes, not from a table here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use maxminddb::{path, LookupResult, MaxMindDbError, Mmap, Reader};

use super::Location;
use crate::error::{Error, Result};

/// The `[geoip] path` databases, looked up in order; the first one with a record wins.
pub struct GeoDb {
    dbs: Vec<Db>,
    /// A broken record is logged once, not once per event.
    error_logged: AtomicBool,
}

struct Db {
    path: PathBuf,
    reader: Reader<Mmap>,
    /// False for an IPv4-only database (IPv6 addresses are not looked up there).
    ipv6: bool,
}

impl GeoDb {
    /// Map every file into memory (pages are read, and counted in the process's resident
    /// memory, only as lookups touch them: a city database is 60-70 MB, of which a stream
    /// touches a part, and an IPv6 file is never touched by IPv4 traffic); a missing or
    /// invalid file is a configuration error.
    #[allow(unsafe_code)] // the memory map, see SAFETY below
    pub fn open(paths: &[PathBuf]) -> Result<GeoDb> {
        let mut dbs = Vec::with_capacity(paths.len());
        for path in paths {
            // SAFETY: the mapping is only read, and must not change while mapped. GeoIP
            // updaters (geoipupdate, scripts/fetch-geoip) write a new file and rename it
            // over the old one, which leaves the mapped inode as it was; the README says
            // to update the files that way.
            let reader = unsafe { Reader::open_mmap(path) }.map_err(|e| {
                Error::Config(format!(
                    "[geoip] path: cannot open GeoIP database {}: {e}",
                    path.display()
                ))
            })?;
            let meta = reader.metadata();
            log::info!(
                "GeoIP database {}: {} (IPv{}, built {})",
                path.display(),
                meta.database_type,
                meta.ip_version,
                build_date(meta.build_epoch),
            );
            let ipv6 = meta.ip_version == 6;
            dbs.push(Db {
                path: path.clone(),
                reader,
                ipv6,
            });
        }
        Ok(GeoDb {
            dbs,
            error_logged: AtomicBool::new(false),
        })
    }

    /// Geography of `ip` (uncached; [`super::Enricher::location`] caches).
    pub fn lookup(&self, ip: &str) -> Location {
        let Some(addr) = public_ip(ip) else {
            return Location::default();
        };
        for db in &self.dbs {
            if addr.is_ipv6() && !db.ipv6 {
                continue;
            }
            let found =
                db.reader
                    .lookup(addr)
                    .and_then(|r| if r.has_data() { read(&r) } else { Ok(None) });
            match found {
                Ok(Some(location)) => return location,
                Ok(None) => {}
                Err(e) => {
                    if !self.error_logged.swap(true, Ordering::Relaxed) {
                        log::warn!(
                            "GeoIP lookup of {addr} in {} failed (logged once): {e}",
                            db.path.display()
                        );
                    }
                }
            }
        }
        Location::default()
    }
}

fn build_date(epoch: u64) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(|| epoch.to_string(), |t| t.format("%Y-%m-%d").to_string())
}

/// Read one record in either layout; `None` when it carries no geography at all.
fn read(r: &LookupResult<'_, Mmap>) -> Result<Option<Location>, MaxMindDbError> {
    // ip-location-db's DB-IP Lite: flat `country_code`, `state1`, `city`.
    let flat: Option<&str> = r.decode_path(&path!["country_code"])?;
    let (code, db_name, region, city) = if flat.is_some() {
        (
            flat,
            None,
            r.decode_path::<&str>(&path!["state1"])?,
            r.decode_path::<&str>(&path!["city"])?,
        )
    } else {
        // MaxMind GeoIP2/GeoLite2-City (and DB-IP's own MaxMind-compatible files).
        (
            r.decode_path::<&str>(&path!["country", "iso_code"])?,
            r.decode_path::<&str>(&path!["country", "names", "en"])?,
            r.decode_path::<&str>(&path!["subdivisions", 0, "names", "en"])?,
            r.decode_path::<&str>(&path!["city", "names", "en"])?,
        )
    };
    let code = text(code)
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| c != "ZZ"); // "unknown or unspecified country"
    let location = Location {
        country_name: code
            .as_deref()
            .and_then(country_name)
            .or_else(|| text(db_name).map(str::to_owned)),
        country_code: code,
        region_name: text(region).map(str::to_owned),
        city_name: text(city).map(str::to_owned),
    };
    if location == Location::default() {
        Ok(None)
    } else {
        Ok(Some(location))
    }
}

fn text(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// English short name of an ISO 3166-1 alpha-2 code, from celes.
///
/// celes spells its names in title case with a leading article ("The United States Of
/// America"); this drops the leading "The " and lowercases the joining words, giving the
/// ISO short-name form ("United States of America", "Netherlands", "Isle of Man").
pub fn country_name(alpha2: &str) -> Option<String> {
    let country = celes::Country::from_alpha2(alpha2).ok()?;
    let name = country.long_name;
    let name = name.strip_prefix("The ").unwrap_or(name);
    let words: Vec<&str> = name
        .split(' ')
        .enumerate()
        .map(|(i, w)| match w {
            "Of" if i > 0 => "of",
            "And" if i > 0 => "and",
            "The" if i > 0 => "the",
            "Da" if i > 0 => "da",
            _ => w,
        })
        .collect();
    Some(words.join(" "))
}

/// `ip` parsed, when it is a routable public address worth looking up. IPv4-mapped IPv6
/// addresses (`::ffff:a.b.c.d`) are looked up as IPv4.
pub fn public_ip(ip: &str) -> Option<IpAddr> {
    let addr: IpAddr = ip.trim().parse().ok()?;
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let public = match addr {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    };
    public.then_some(addr)
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_loopback() // 127/8
        || ip.is_link_local() // 169.254/16
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast() // 224/4
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || a == 0 // "this network"
        || a >= 240 // reserved 240/4
        || (a == 100 && (b & 0xc0) == 64) // shared address space 100.64/10 (CGNAT)
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18/15
        || (a == 192 && b == 0 && c == 0)) // IETF protocol assignments 192.0.0/24
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast() // ff00::/8
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)) // discard 100::/64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_reserved_and_garbage_are_not_looked_up() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "100.64.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "not-an-ip",
            "",
            "1.2.3",
            "1.2.3.4.5",
            "8.8.8.8:53",
        ] {
            assert_eq!(public_ip(ip), None, "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        assert_eq!(
            public_ip("8.8.8.8"),
            Some(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)))
        );
        assert_eq!(
            public_ip(" 1.1.1.1 "),
            Some(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)))
        );
        assert_eq!(
            public_ip("100.128.0.1"),
            Some(IpAddr::V4(Ipv4Addr::new(100, 128, 0, 1)))
        );
        assert_eq!(
            public_ip("::ffff:8.8.4.4"),
            Some(IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)))
        );
        assert!(matches!(
            public_ip("2001:4860:4860::8888"),
            Some(IpAddr::V6(_))
        ));
    }

    #[test]
    fn country_names_from_celes() {
        assert_eq!(
            country_name("US").as_deref(),
            Some("United States of America")
        );
        assert_eq!(country_name("de").as_deref(), Some("Germany"));
        assert_eq!(country_name("NL").as_deref(), Some("Netherlands"));
        assert_eq!(
            country_name("GB").as_deref(),
            Some("United Kingdom of Great Britain and Northern Ireland")
        );
        assert_eq!(country_name("IM").as_deref(), Some("Isle of Man"));
        assert_eq!(
            country_name("BA").as_deref(),
            Some("Bosnia and Herzegovina")
        );
        assert_eq!(country_name("ZZ"), None);
        assert_eq!(country_name(""), None);
    }

    #[test]
    fn missing_or_invalid_database_is_a_config_error() {
        let missing = PathBuf::from("/nonexistent/geoip/nothing.mmdb");
        match GeoDb::open(&[missing]) {
            Err(Error::Config(msg)) => {
                assert!(msg.contains("[geoip] path"), "{msg}");
                assert!(msg.contains("nothing.mmdb"), "{msg}");
            }
            Err(e) => panic!("wrong error kind: {e}"),
            Ok(_) => panic!("a missing database opened"),
        }
        let not_mmdb = PathBuf::from(file!()); // this source file
        assert!(matches!(GeoDb::open(&[not_mmdb]), Err(Error::Config(_))));
    }
}
