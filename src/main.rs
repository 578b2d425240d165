//! The `streamer` binary: parse the command line, run, map errors to exit codes
//! (2 configuration, 1 runtime). The library's commands go to [`streamer::cli::run`];
//! `produce` goes to the event generator (the `streamer-produce` crate), handed the
//! configured cluster and the consumer's transform as its judge.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use streamer::config::Config;
use streamer::error::{Error, Result};

#[derive(Parser, Debug)]
#[command(
    name = "streamer",
    version,
    about = "Kafka product-view events into a PostgreSQL star schema, exactly once",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The main job: warm up, then stream until SIGINT/SIGTERM.
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Pipeline(streamer::cli::Command),
    /// Write synthetic or replayed events to the topic (demo, load tests).
    Produce {
        config: PathBuf,
        #[command(flatten)]
        args: streamer_produce::ProduceCli,
    },
}

fn main() {
    limit_malloc_arenas();
    streamer::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Produce { config, args }) => produce(&config, args),
        Some(Command::Pipeline(command)) => streamer::cli::run(cli.config, Some(command)),
        None => streamer::cli::run(cli.config, None),
    };
    if let Err(e) = result {
        // once: in the log when errors are logged, else on stderr
        if log::log_enabled!(log::Level::Error) {
            log::error!("{e}");
        } else {
            eprintln!("streamer: {e}");
        }
        std::process::exit(e.exit_code());
    }
}

/// `streamer produce CONFIG ...`: the events to `[remote_kafka]`'s cluster, then the
/// summary line scripts/bench and scripts/demo read.
fn produce(config: &Path, args: streamer_produce::ProduceCli) -> Result<()> {
    let cfg = Config::load(config)?;
    let report = args
        .args()
        .and_then(|args| streamer_produce::run(&produce_target(&cfg), &args))
        .map_err(|e| match e {
            streamer_produce::Error::Config(m) => Error::Config(m),
            streamer_produce::Error::Fatal { context, message } => Error::fatal(context, message),
        })?;
    println!("{report}");
    Ok(())
}

/// What the generator needs from the configuration: the cluster (secret values kept out
/// of client errors) and the first subscribed topic; and the transform, which says how
/// the consumer will read each replayed line.
fn produce_target(cfg: &Config) -> streamer_produce::Target {
    streamer_produce::Target {
        client_id: cfg.kafka.client_id.clone(),
        properties: (cfg.kafka.properties.iter())
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
        default_topic: cfg.kafka.topics.first().cloned(),
        describe_error: streamer::config::kafka_error_text,
        judge: |message| {
            let fact = streamer::transform::transform(Some(message)).ok()?;
            Some(streamer_produce::Judged {
                id: fact.event_id().to_owned(),
                identity: fact.sales_key().to_owned(),
            })
        },
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
