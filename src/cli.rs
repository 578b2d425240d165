//! The library's commands of contract §2 (all but `produce`, which the binary adds with
//! the generator crate): load the config, dispatch to a command.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use crate::config::{Config, Mode};
use crate::enrich::Enricher;
use crate::error::{Error, Result};
use crate::metrics::{self, Metrics};
use crate::modes::{self, Run};
use crate::report;
use crate::sink::fold::{Folder, FOLD_EVERY};
use crate::sink::{self, Sink};
use crate::source::Source;
use crate::warmup;

/// The library's commands; the binary's parser flattens them into its own subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Stream only (no warmup).
    Run {
        config: PathBuf,
        /// Exit 0 once every assigned partition is read to its end and committed.
        #[arg(long)]
        until_caught_up: bool,
    },
    /// Create the schema and fill dim_date (idempotent).
    Warmup { config: PathBuf },
    /// Validate the config and reach Kafka and PostgreSQL.
    Check { config: PathBuf },
    /// The six analytics reports of a day.
    Report {
        config: PathBuf,
        /// The day (YYYY-MM-DD); default: today, UTC.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value_t = report::Format::Table)]
        format: report::Format,
        /// Also write a self-contained HTML dashboard to this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Per partition: committed offset, broker end, lag, last commit, and the
    /// reconciliation of what was consumed.
    Status {
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = crate::status::StatusFormat::Table)]
        format: crate::status::StatusFormat,
        /// Exit 1 when the total lag (messages) is over this bound (cron, alerting).
        #[arg(long, value_name = "MESSAGES")]
        max_lag: Option<i64>,
    },
    /// Move this group's stored offsets (replay or skip), printing before and after.
    Reset {
        config: PathBuf,
        #[command(flatten)]
        args: crate::reset::ResetArgs,
    },
}

/// /healthz turns 503 after PostgreSQL writes failed (or lag stood still) this long.
const UNHEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Run `command`, or with none the main job on `config` (`streamer CONFIG`: warm up, then
/// stream until SIGINT/SIGTERM).
pub fn run(config: Option<PathBuf>, command: Option<Command>) -> Result<()> {
    match (config, command) {
        (Some(path), None) => stream(Config::load(&path)?, false, true),
        (
            None,
            Some(Command::Run {
                config,
                until_caught_up,
            }),
        ) => stream(Config::load(&config)?, until_caught_up, false),
        (None, Some(Command::Warmup { config })) => {
            let cfg = Config::load(&config)?;
            let pool = sink::pool(&cfg, 1)?;
            warmup::run(&pool, &cfg.catalog, cfg.pipeline.retry_budget)
        }
        (None, Some(Command::Check { config })) => check(&config),
        (
            None,
            Some(Command::Status {
                config,
                format,
                max_lag,
            }),
        ) => crate::status::run(&Config::load(&config)?, format, max_lag),
        (None, Some(Command::Reset { config, args })) => {
            crate::reset::run(&Config::load(&config)?, &args)
        }
        (
            None,
            Some(Command::Report {
                config,
                date,
                format,
                html,
            }),
        ) => {
            let cfg = Config::load(&config)?;
            let mut client = cfg
                .postgres
                .pg_config()
                .connect(sink::tls::connector(&cfg.postgres)?)
                .map_err(|e| Error::from_pg("report: connecting to PostgreSQL", e))?;
            let stdout = std::io::stdout();
            report::run(
                &mut client,
                date,
                format,
                html.as_deref(),
                &mut stdout.lock(),
            )?;
            if let Some(path) = html {
                log::info!("dashboard written to {}", path.display());
            }
            Ok(())
        }
        _ => Err(Error::Config(
            "usage: streamer CONFIG | streamer COMMAND CONFIG (see --help)".into(),
        )),
    }
}

/// Connections opened ahead while the consumer joins its group: one for the offsets read
/// on assignment, one for the first batch.
const PRECONNECT: u32 = 2;

/// Warm up (optionally) and stream until stopped or caught up.
pub fn stream(cfg: Config, until_caught_up: bool, warm: bool) -> Result<()> {
    for key in &cfg.ignored {
        log::info!("config: {key} is a Spark or Java client setting and is ignored");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| Error::fatal("installing signal handlers", e))?;
    }
    let metrics = Arc::new(Metrics::new());
    // Joining the consumer group takes the broker 60-80 ms of round trips, which need
    // not wait for the setup below (building the TLS connector parses the system's CA
    // bundle, 30-60 ms; the GeoIP files): the consumer joins in librdkafka's threads and
    // its assignment waits in its queue until the loop polls. After a warmup, whose
    // length is the schema's, the consumer is created once it is done.
    let early = (!warm)
        .then(|| Source::subscribe(&cfg, metrics.clone(), until_caught_up))
        .transpose()?;
    let pool = sink::pool(&cfg, cfg.pipeline.pg_pool_size)?;
    if warm {
        warmup::run(&pool, &cfg.catalog, cfg.pipeline.retry_budget)?;
    }
    let source = match early {
        Some(s) => s,
        None => Source::subscribe(&cfg, metrics.clone(), until_caught_up)?,
    };
    // The first checkouts (offsets on assignment, the first batch) find connections open.
    pool.preconnect(PRECONNECT);
    let enricher = if cfg.pipeline.enrich {
        Enricher::open(&cfg.geoip_paths)?
    } else {
        log::info!("[pipeline] enrich = false: browser, OS and geography stay NULL");
        Enricher::open(&[])?.disabled()
    };
    let enricher = Arc::new(enricher);
    let threads = cfg.pipeline.transform_threads;
    let transform_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("transform-{i}"))
        .build()
        .map_err(|e| Error::fatal("starting the transform pool", e))?;
    let dashboard = report::live::Dashboard::new(&cfg.postgres)?;
    if let Some(addr) = metrics::serve(
        &cfg.metrics_listen,
        metrics.clone(),
        UNHEALTHY_AFTER,
        Some(dashboard),
    )? {
        log::info!(
            "metrics on http://{addr}/metrics, health on http://{addr}/healthz, \
             dashboard on http://{addr}/dashboard"
        );
    }
    let sink = Sink::new(
        pool,
        cfg.kafka.group_id.clone(),
        enricher,
        cfg.pipeline.retry_budget,
        metrics.clone(),
    );
    log::info!(
        "streaming {:?} as group {} in {} mode",
        cfg.kafka.topics,
        cfg.kafka.group_id,
        match cfg.pipeline.mode {
            Mode::Partition => "partition",
            Mode::Batch => "batch",
        }
    );
    let folder = Folder::spawn(
        cfg.postgres.pg_config(),
        sink::tls::connector(&cfg.postgres)?,
        FOLD_EVERY,
    )?;
    let run = Arc::new(Run {
        last_fold: folder.last_fold(),
        budget: crate::modes::budget::Budget::new(cfg.pipeline.buffer_max_bytes),
        cfg,
        sink,
        pool: transform_pool,
        stop: stop.clone(),
        until_caught_up,
        metrics,
        torn_down: Arc::new(AtomicBool::new(false)),
    });
    // progress_interval 0: no progress lines.
    let every = run.cfg.progress_interval;
    let progress = (!every.is_zero()).then(|| spawn_progress(run.clone(), every));
    let result = modes::run(run.clone(), source);
    let started = std::time::Instant::now();
    folder.finish();
    log::debug!("last rollup fold done in {:?}", started.elapsed());
    run.torn_down
        .store(true, std::sync::atomic::Ordering::Release);
    drop(progress);
    let m = &run.metrics;
    log::info!(
        "stopped: {} messages, {} facts, {} duplicates, {} dead letters in {} batches \
         ({} through the staging path)",
        m.messages.get(),
        m.rows_of("fact_sales"),
        m.duplicates.get(),
        m.dead_letters_total(),
        m.batches.get(),
        m.staging.get(),
    );
    // The connections and caches go on a thread of their own: closing the pool's
    // connections one after another took 20-30 ms at the end of every run, which the
    // process, exiting once this returns, need not wait for.
    let dropping = std::thread::Builder::new()
        .name("teardown".into())
        .spawn(move || drop(run));
    if let Err(e) = dropping {
        log::debug!("dropping the run inline: {e}");
    }
    result
}

/// A thread logging one progress line per interval; it ends with the process.
fn spawn_progress(run: Arc<Run>, every: Duration) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || {
            let mut last = (0u64, 0u64, std::time::Instant::now());
            loop {
                std::thread::sleep(every);
                let m = &run.metrics;
                let (msgs, facts) = (m.messages.get(), m.rows_of("fact_sales"));
                let secs = last.2.elapsed().as_secs_f64().max(0.001);
                let lags: Vec<String> =
                    m.lags().iter().map(|(t, p, l)| format!("{t}/{p}={l}")).collect();
                log::info!(
                    "progress: {:.0} events/s, {:.0} fact rows/s, {} facts, {} dead letters, lag [{}]",
                    (msgs - last.0) as f64 / secs,
                    (facts - last.1) as f64 / secs,
                    facts,
                    m.dead_letters_total(),
                    lags.join(" ")
                );
                last = (msgs, facts, std::time::Instant::now());
            }
        })
        .ok()
}

/// Validate the config, reach PostgreSQL and Kafka, and say what is wrong.
fn check(path: &std::path::Path) -> Result<()> {
    let cfg = Config::load(path)?;
    println!("config: ok ({})", path.display());
    let mut failures = 0;
    match cfg
        .postgres
        .pg_config()
        .connect(sink::tls::connector(&cfg.postgres)?)
    {
        Ok(mut c) => match c.simple_query("SELECT 1") {
            Ok(_) => println!(
                "postgres: ok ({}:{}/{})",
                cfg.postgres.host, cfg.postgres.port, cfg.postgres.database
            ),
            Err(e) => {
                failures += 1;
                println!("postgres: FAILED: {}", crate::error::PgError(e));
            }
        },
        Err(e) => {
            failures += 1;
            println!(
                "postgres: FAILED to connect to {}:{}/{} (sslmode {}): {}",
                cfg.postgres.host,
                cfg.postgres.port,
                cfg.postgres.database,
                cfg.postgres.sslmode,
                crate::error::PgError(e)
            );
        }
    }
    let consumer: Result<rdkafka::consumer::BaseConsumer, _> =
        crate::source::client_config(&cfg).create();
    match consumer {
        Ok(c) => {
            for topic in &cfg.kafka.topics {
                use rdkafka::consumer::Consumer;
                match c.fetch_metadata(Some(topic), Duration::from_secs(10)) {
                    Ok(md) => {
                        let parts = md.topics().first().map_or(0, |t| t.partitions().len());
                        let err = md.topics().first().and_then(|t| t.error());
                        match err {
                            None => println!("kafka: ok (topic {topic}, {parts} partitions)"),
                            Some(e) => {
                                failures += 1;
                                println!("kafka: topic {topic}: {e:?}");
                            }
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        println!(
                            "kafka: FAILED to reach the brokers {} for topic {topic}: {e}",
                            cfg.kafka.property("bootstrap.servers").unwrap_or_default()
                        );
                    }
                }
            }
        }
        Err(e) => {
            failures += 1;
            println!(
                "kafka: FAILED to create a client: {}",
                crate::config::kafka_error_text(&e)
            );
        }
    }
    if failures == 0 {
        Ok(())
    } else {
        Err(Error::fatal(
            "check",
            format!("{failures} problem(s) found"),
        ))
    }
}
