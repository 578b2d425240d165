//! The `streamer` binary: parse the command line, run, map errors to exit codes
//! (2 configuration, 1 runtime).

use clap::Parser;

fn main() {
    limit_malloc_arenas();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = streamer::cli::Cli::parse();
    if let Err(e) = streamer::cli::run(cli) {
        // once: in the log when errors are logged, else on stderr
        if log::log_enabled!(log::Level::Error) {
            log::error!("{e}");
        } else {
            eprintln!("streamer: {e}");
        }
        std::process::exit(e.exit_code());
    }
}

/// glibc gives threads that allocate at once heaps of their own (up to eight per core),
/// and the batches a loader thread frees were built on others: with a dozen threads the
/// extra heaps held about 18 MB more at peak while draining 1M events, for no measurable
/// speed. Two heaps, unless the user set `MALLOC_ARENA_MAX` themselves.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
