//! `[metrics]`: where the Prometheus endpoint listens (or `off`) and how often progress is
//! logged.

use std::time::Duration;

use super::document::Entry;
use super::reader::{at, shown, Reader};
use crate::error::Result;

/// `[metrics] listen` default.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9187";
/// `[metrics] progress_interval_s` default.
pub const DEFAULT_PROGRESS_INTERVAL_S: u64 = 10;

/// `[metrics]`: the listen address (`off`: no endpoint) and the progress interval.
pub(super) fn metrics_section(r: &Reader<'_>) -> Result<(String, Duration)> {
    let listen = match r.get("metrics", "listen") {
        Some(e) => listen_address(e)?,
        None => DEFAULT_METRICS_LISTEN.to_string(),
    };
    let progress_interval = Duration::from_secs(r.number(
        "metrics",
        "progress_interval_s",
        DEFAULT_PROGRESS_INTERVAL_S,
        0,
    )?);
    Ok((listen, progress_interval))
}

/// `host:port` with a numeric port; IPv6 hosts in brackets; `off` disables the endpoint.
fn listen_address(e: &Entry) -> Result<String> {
    let v = e.value.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok("off".to_string());
    }
    let ok = v
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        return Err(at(
            "metrics",
            e,
            format!(
                "expected host:port such as 127.0.0.1:9187, or off, got {}",
                shown(e)
            ),
        ));
    }
    Ok(v.to_string())
}
