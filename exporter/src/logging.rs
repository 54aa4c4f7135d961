//! Logs like an exporter: one line per event on stderr, `logfmt` (the default, as Prometheus
//! exporters do) or `json`; colour only when stderr is a terminal; fields as `key=value` with plain
//! values (log call sites use `%` / `Display`, never `?` / `Debug`, for field values).
use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// `--log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `ts=… level=info target=… msg="…" key=value …`
    #[default]
    Logfmt,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's fields.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides `level` when set.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("tripline={level}")));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Logfmt => {
            let layer = tracing_logfmt::builder()
                .with_span_name(false)
                .with_span_path(false)
                .with_ansi_color(std::io::stderr().is_terminal())
                .layer()
                .with_writer(std::io::stderr);
            let _ = registry.with(layer).try_init();
        }
        LogFormat::Json => {
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_ansi(false)
                .with_writer(std::io::stderr);
            let _ = registry.with(layer).try_init();
        }
    }
}

/// The name a `clap::ValueEnum` value has on the command line and in the configuration file, for
/// log fields (`mode=auto`, not `mode=Auto`).
pub fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// An optional path as a log field value: the path, or `none`.
pub fn opt_path(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none".to_string())
}
