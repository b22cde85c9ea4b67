//! The command line: `framewire serve | bench | stream`, each subcommand with its own argument
//! struct (the server's flags in [`crate::config`], the clients' beside each client). `main.rs`
//! only matches on [`Command`]; nothing below the command line imports this module.

use clap::builder::PossibleValue;
use clap::{Parser, Subcommand, ValueEnum};

use crate::client::{bench::BenchArgs, stream::StreamArgs};
use crate::config::ServeArgs;
use crate::vision::runtime::EngineKind;
use crate::vision::PipelineKind;

/// `framewire`: real-time video inference over WebSocket.
#[derive(Debug, Parser)]
#[command(name = "framewire", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once at start-up and matched at once: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the WebSocket inference server.
    Serve(ServeArgs),
    /// Load-test a running server (closed loop, open loop, idle sessions).
    Bench(BenchArgs),
    /// Stream frames (a directory, one looped JPEG, MJPEG on stdin, or through ffmpeg an RTSP /
    /// HTTP camera, a V4L2 device or a video file) to a server and print the results.
    Stream(StreamArgs),
}

/// `--pipeline` (server and clients) takes the pipeline's own names.
impl ValueEnum for PipelineKind {
    fn value_variants<'a>() -> &'a [Self] {
        &PipelineKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            PipelineKind::Detect => "Object detection only",
            PipelineKind::Ocr => "Text detection and recognition only",
            PipelineKind::DetectOcr => "Object detection and OCR, linked",
        };
        Some(PossibleValue::new(self.as_str()).help(help))
    }
}

/// `--engine` takes the engine's own names.
impl ValueEnum for EngineKind {
    fn value_variants<'a>() -> &'a [Self] {
        &EngineKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            EngineKind::Tract => "tract: pure Rust, embedded, nothing to install (the default)",
            EngineKind::OnnxRuntime => "ONNX Runtime, loaded from a shared library at start-up (--onnxruntime-lib)",
        };
        Some(PossibleValue::new(self.as_str()).help(help))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_parse_and_names_round_trip() {
        for name in ["detect", "ocr", "detect_ocr"] {
            let cli = Cli::parse_from(["framewire", "serve", "--pipeline", name]);
            let Command::Serve(a) = cli.command else { panic!("serve") };
            assert_eq!(a.pipeline.as_str(), name);
        }
        for name in ["tract", "onnxruntime"] {
            let cli = Cli::parse_from(["framewire", "serve", "--engine", name]);
            let Command::Serve(a) = cli.command else { panic!("serve") };
            assert_eq!(a.engine.as_str(), name);
        }
        assert!(Cli::try_parse_from(["framewire", "serve", "--pipeline", "detect-ocr"]).is_err());
    }
}
