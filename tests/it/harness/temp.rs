//! Unique names (databases, topics, groups, apps) and per-test temp dirs ([`TempDir`]).

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A process-unique, hard-to-collide lowercase hex suffix (pid, time, counter, random seed).
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(n);
    format!("{:016x}", h.finish())
}

/// `prefix_<unique suffix>`: safe as a PostgreSQL identifier, topic, group or app name.
pub(crate) fn unique_name(prefix: &str) -> String {
    format!("{}_{}", prefix, unique_suffix())
}

pub(crate) fn keep_dirs() -> bool {
    std::env::var_os("STREAMER_KEEP_TEST_DIRS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A directory under the system temp dir, removed on drop unless the test is panicking
/// (then its path is printed so logs can be read).
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(prefix: &str) -> TempDir {
        for _ in 0..16 {
            let path = std::env::temp_dir().join(format!("{}-{}", prefix, unique_suffix()));
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create temp dir {}: {e}", path.display()),
            }
        }
        panic!("cannot create a unique temp dir with prefix {prefix}");
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            // kept via TempDir::keep: owns nothing any more
        } else if std::thread::panicking() || keep_dirs() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

impl TempDir {
    /// Gives up ownership: the directory stays on disk; returns its path.
    pub(crate) fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}
