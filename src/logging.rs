//! Log set-up for the binary: env_logger with `RUST_LOG` (default `info`), as plain text or as
//! one JSON object per line (`--log-format json`) for log shippers.
//!
//! A JSON line is `{"ts":"2026-11-30T21:38:09.123Z","level":"INFO","target":"framewire::session","msg":"…"}`;
//! `msg` is the same text the plain format prints, so the session start/end lines keep their
//! `key=value` counters.

use std::io::Write;

use clap::ValueEnum;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `[2026-11-30T21:38:09Z INFO  framewire::session] session … end …` (env_logger's own).
    Text,
    /// One JSON object per line: `{"ts":"…","level":"INFO","target":"…","msg":"…"}`, for log
    /// shippers (Loki, Elasticsearch, CloudWatch).
    Json,
}

/// One JSON log line (without the newline).
pub fn json_line(ts: &str, level: log::Level, target: &str, msg: &str) -> String {
    serde_json::json!({ "ts": ts, "level": level.as_str(), "target": target, "msg": msg }).to_string()
}

/// Install the global logger. Call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        b.format(|buf, record| {
            let ts = buf.timestamp_millis().to_string();
            let line = json_line(&ts, record.level(), record.target(), &record.args().to_string());
            writeln!(buf, "{line}")
        });
    }
    b.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_escape_the_message() {
        let l = json_line("2026-11-30T00:00:00.000Z", log::Level::Info, "framewire::session", "a \"quoted\"\nline");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["msg"], "a \"quoted\"\nline");
        assert_eq!(v["level"], "INFO");
        assert!(!l.contains('\n'));
    }
}
