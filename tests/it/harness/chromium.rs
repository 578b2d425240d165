//! Headless Chromium (Debian's `chromium` package): screenshots and DOM dumps of a page,
//! with a NetLog of every request the page made and nothing reaching the network.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium binary, if installed.
pub(crate) fn find() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/usr/bin/chromium")];
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            candidates.push(dir.join("chromium"));
            candidates.push(dir.join("chromium-browser"));
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The Chromium binary; None (the test is skipped, saying so) when it is not installed,
/// unless CI is set, where its absence fails the test.
pub(crate) fn require() -> Option<PathBuf> {
    let found = find();
    if found.is_none() {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("chromium not found but CI is set: install Debian's chromium package");
        }
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
    }
    found
}

/// What Chromium makes of the page.
pub(crate) enum Output<'a> {
    /// a PNG of the window, to this file
    Screenshot(&'a Path),
    /// the DOM after loading, serialised on stdout
    DumpDom,
}

/// One run of Chromium.
pub(crate) struct Run {
    /// the DOM for [`Output::DumpDom`]
    pub stdout: String,
    /// Chromium's log
    pub stderr: String,
    /// the NetLog (JSON)
    pub netlog: String,
}

/// Loads `url` in headless Chromium with a fresh profile under `dir`, logging to stderr and
/// its network activity to a NetLog file.
///
/// Chromium's own background services (component updater, account list) create requests to
/// Google hosts despite the `--disable-*` flags, so every request is sent to a proxy whose
/// host the resolver rule maps to "not found": nothing leaves the process (no DNS query, no
/// connection), while the NetLog still records each request the page would have made. Only
/// `local`, a loopback `host:port` (a page served by the test), is reached directly.
pub(crate) fn run(
    chromium: &Path,
    url: &str,
    local: Option<&str>,
    dir: &Path,
    out: Output<'_>,
) -> Run {
    let profile = dir.join("chromium-profile");
    let err_path = dir.join("chromium.stderr");
    let out_path = dir.join("chromium.stdout");
    let netlog = dir.join("netlog.json");
    std::fs::create_dir_all(&profile).unwrap();
    let stderr = std::fs::File::create(&err_path).unwrap();
    let stdout = std::fs::File::create(&out_path).unwrap();
    let (bypass, resolve) = match local {
        Some(hostport) => {
            let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
            (
                format!("--proxy-bypass-list={hostport}"),
                format!("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}"),
            )
        }
        None => (
            "--proxy-bypass-list=<-loopback>".to_string(),
            "--host-resolver-rules=MAP * ~NOTFOUND".to_string(),
        ),
    };
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-breakpad",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,\
         Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
        "--proxy-server=http://127.0.0.1:9",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1200,3000",
    ])
    .arg(bypass)
    .arg(resolve)
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--log-net-log={}", netlog.display()));
    match out {
        Output::Screenshot(png) => cmd.arg(format!("--screenshot={}", png.display())),
        Output::DumpDom => cmd.arg("--dump-dom"),
    };
    let mut child = cmd
        .arg(url)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", chromium.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium took over 120 s; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "chromium exited with {status}:\n{log}");
    let net = std::fs::read_to_string(&netlog)
        .unwrap_or_else(|e| panic!("no NetLog {}: {e}\n{log}", netlog.display()));
    Run {
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: log,
        netlog: net,
    }
}

/// URLs of the network requests made on behalf of pages of `site` (`file://`,
/// `http://127.0.0.1`), from a NetLog: requests whose network isolation key is that site
/// (Chromium's own requests have others).
pub(crate) fn page_requests(netlog: &str, site: &str) -> Vec<String> {
    let log: serde_json::Value =
        serde_json::from_str(netlog).unwrap_or_else(|e| panic!("NetLog is not JSON: {e}"));
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_i64()
        .expect("NetLog constants name URL_REQUEST_START_JOB");
    let events = log["events"].as_array().expect("NetLog events");
    assert!(!events.is_empty(), "empty NetLog");
    events
        .iter()
        .filter(|e| e["type"].as_i64() == Some(start_job))
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.starts_with(site))
        })
        .map(|e| e["params"]["url"].as_str().unwrap_or("?").to_owned())
        .collect()
}
