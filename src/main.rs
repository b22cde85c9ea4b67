//! The `framewire` command: parse flags, then hand over to the library.
//!
//! - `framewire serve`: bind the listener (answering "starting" while the models load), load
//!   the models, then serve until SIGINT/SIGTERM;
//! - `framewire bench`: the load client ([`framewire::client::bench`]);
//! - `framewire stream`: the streaming client for scripts ([`framewire::client::stream`]).

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use framewire::cli::{Cli, Command};
use framewire::logging::LogFormat;
use framewire::server::Server;

fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(args) => {
            framewire::logging::init(args.log_format);
            let config = args.validate()?;
            // Bind first: while the models load, /healthz says 503 `starting`.
            let server =
                Server::bind_starting(config.clone()).with_context(|| format!("cannot listen on {}", config.listen))?;
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::low_level::pipe::register_raw(sig, server.shutdown_write_fd())
                    .context("cannot install signal handlers")?;
            }
            let handle = server.handle()?;
            log::info!("listening on ws://{}/ws/video/stream (starting: loading models)", handle.local_addr());
            if let Some(admin) = handle.admin_addr() {
                log::info!("admin endpoints on http://{admin} (/healthz, /metrics, /sessions)");
            }
            let running = std::thread::Builder::new().name("fw-accept".into()).spawn(move || server.run())?;
            let scheduler = match framewire::build_scheduler(&config) {
                Ok(scheduler) => scheduler,
                Err(e) => {
                    handle.shutdown();
                    let _ = running.join();
                    return Err(e).context("cannot start the server");
                }
            };
            let _ = handle.set_scheduler(Arc::new(scheduler));
            if handle.is_shutting_down() {
                log::info!("models loaded after a shutdown request: exiting");
            } else {
                log::info!("ready: accepting sessions on ws://{}/ws/video/stream", handle.local_addr());
            }
            let clean = running.join().map_err(|_| anyhow::anyhow!("the acceptor thread panicked"))??;
            if !clean {
                log::warn!("exiting with sessions still open after the grace period");
            }
            Ok(())
        }
        Command::Bench(args) => {
            framewire::logging::init(LogFormat::Text);
            let report = framewire::client::bench::run(&args)?;
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
            let report = framewire::client::stream::run(&args, &mut std::io::stdout())
                .with_context(|| format!("streaming to {}", args.url))?;
            for line in report.lines() {
                eprintln!("\r{line}\x1b[K");
            }
            anyhow::ensure!(report.ok(), "the stream did not end cleanly");
            Ok(())
        }
    }
}
