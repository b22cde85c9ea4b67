//! The `framewire` command: parse flags, then hand over to the library.
//!
//! `framewire serve` loads the models, binds the listener and serves until SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use framewire::config::{Cli, Command};
use framewire::server::Server;

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(args) => {
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
            let report = framewire::loadgen::run(&args)?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", report.human());
            }
            anyhow::ensure!(report.unaccounted == 0, "{} frames unaccounted for", report.unaccounted);
            Ok(())
        }
    }
}
