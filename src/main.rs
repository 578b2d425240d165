//! The `streamer` binary: parse the command line, run, map errors to exit codes
//! (2 configuration, 1 runtime).

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = streamer::cli::Cli::parse();
    if let Err(e) = streamer::cli::run(cli) {
        log::error!("{e}");
        eprintln!("streamer: {e}");
        std::process::exit(e.exit_code());
    }
}
