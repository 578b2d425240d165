//! Child processes: spawning the `streamer` binary ([`Streamer`], [`run_to_exit`]), waiting
//! with a timeout, signals, and free loopback ports.

use std::collections::HashSet;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::temp::TempDir;

/// A loopback port that was free a moment ago (bound to 127.0.0.1:0 and released).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Whether process `pid` holds a listening TCP socket on 127.0.0.1:`port` (Linux /proc);
/// `None` when that cannot be determined.
pub(crate) fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" {
                continue; // not LISTEN
            }
            let local_port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.insert(cols[9].to_string());
            }
        }
    }
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        if let Ok(target) = fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                if inodes.contains(inode) {
                    return Some(true);
                }
            }
        }
    }
    Some(false)
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
    assert!(status.success(), "kill -{sig} {pid} failed: {status}");
}

/// Path of the `streamer` binary built by cargo for these tests.
pub(crate) fn streamer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// A running `streamer` whose stdout and stderr go to `output_path`. Killed on drop if
/// still running.
pub(crate) struct Streamer {
    pub child: Child,
    pub output_path: PathBuf,
}

impl Streamer {
    /// Output (stdout and stderr interleaved) so far.
    pub(crate) fn output(&self) -> String {
        fs::read_to_string(&self.output_path).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, `STOP`, `CONT`).
    pub(crate) fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for exit; `None` when still running.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }

    /// Waits for exit; on timeout kills it and panics with its output.
    pub(crate) fn wait_or_fail(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Some(s) => s,
            None => {
                self.kill();
                panic!(
                    "streamer did not exit within {timeout:?}; output ({}):\n{}",
                    self.output_path.display(),
                    self.output()
                );
            }
        }
    }

    /// Polls the output until it contains `needle` or panics after `timeout`.
    pub(crate) fn wait_for_output(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "streamer exited ({status}) before printing {needle:?}; output:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "streamer did not print {needle:?} within {timeout:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Waits up to `timeout` for `child` to exit.
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(25)),
            Err(e) => panic!("wait for child {}: {e}", child.id()),
        }
    }
}

/// Starts `streamer <args>` with `RUST_LOG=info` (unless `envs` sets it) plus `envs`, cwd
/// the crate root, stdout+stderr to `output_path`.
pub(crate) fn spawn_streamer_to(
    output_path: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Streamer {
    let out = File::create(output_path)
        .unwrap_or_else(|e| panic!("create {}: {e}", output_path.display()));
    let mut cmd = Command::new(streamer_bin());
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "info")
        // Tests run many streamers at once: each gets its own metrics port.
        .env("STREAMER__METRICS__LISTEN", "127.0.0.1:0")
        .env_remove("MODE")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone output handle"))
        .stderr(out);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", streamer_bin().display()));
    Streamer {
        child,
        output_path: output_path.to_path_buf(),
    }
}

/// Like [`spawn_streamer_to`], with the output in `dir/streamer-<n>.out`.
pub(crate) fn spawn_streamer(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Streamer {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    spawn_streamer_to(&dir.join(format!("streamer-{n}.out")), args, envs)
}

/// Result of [`run_to_exit`].
#[derive(Debug)]
pub(crate) struct RunOutput {
    pub status: ExitStatus,
    /// stdout and stderr interleaved.
    pub output: String,
}

impl RunOutput {
    /// Panics with the output unless the exit code is `code`.
    pub(crate) fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit code {code}, got {}; output:\n{}",
            self.status,
            self.output
        );
        self
    }
}

/// Runs `streamer <args>` to completion (RUST_LOG=info); kills it and panics on timeout.
pub(crate) fn run_to_exit(args: &[&str], timeout: Duration) -> RunOutput {
    run_to_exit_env(args, &[], timeout)
}

/// [`run_to_exit`] with extra environment variables.
pub(crate) fn run_to_exit_env(
    args: &[&str],
    envs: &[(&str, &str)],
    timeout: Duration,
) -> RunOutput {
    let dir = TempDir::new("streamer-run");
    let mut s = spawn_streamer(dir.path(), args, envs);
    let status = s.wait_or_fail(timeout);
    let output = s.output();
    RunOutput { status, output }
}
