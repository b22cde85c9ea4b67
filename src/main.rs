//! The `framewire` command: parse flags, then hand over to the library.
//!
//! - `framewire serve`: load the models, bind the listener and serve until SIGINT/SIGTERM;
//! - `framewire bench`: the load client ([`framewire::loadgen`]);
//! - `framewire stream`: the streaming client for scripts ([`framewire::stream`]).

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use framewire::config::{Cli, Command, LogFormat};
use framewire::server::Server;

fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(args) => {
            framewire::logging::init(args.log_format);
            let config = args.validate()?;
            let engine = framewire::build_engine(&config).context("cannot start the server")?;
            let server = Server::bind(config.clone(), Arc::new(engine))
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::low_level::pipe::register_raw(sig, server.shutdown_write_fd())
                    .context("cannot install signal handlers")?;
            }
            log::info!("listening on ws://{}/ws/video/stream", server.handle()?.local_addr());
            let clean = server.run()?;
            if !clean {
                log::warn!("exiting with sessions still open after the grace period");
            }
            Ok(())
        }
        Command::Bench(args) => {
            framewire::logging::init(LogFormat::Text);
            let report = framewire::loadgen::run(&args)?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", report.human());
            }
            anyhow::ensure!(
                report.closed_by_server.is_empty(),
                "the server closed {} session(s) before the run ended ({})",
                report.closed_by_server.len(),
                report.closed_by_server.join(", ")
            );
            anyhow::ensure!(report.unaccounted == 0, "{} frames unaccounted for", report.unaccounted);
            Ok(())
        }
        Command::Stream(args) => {
            framewire::logging::init(LogFormat::Text);
            let summary = framewire::stream::run(&args, &mut std::io::stdout().lock())
                .with_context(|| format!("streaming to {}", args.url))?;
            eprintln!("\r{}\x1b[K", summary.line());
            anyhow::ensure!(summary.ok(), "the stream did not end cleanly");
            Ok(())
        }
    }
}
