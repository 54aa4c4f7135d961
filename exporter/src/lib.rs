//! tripline: a per-host Linux security-signals exporter.
//!
//! Data flows one way: [`probes`] → decode ([`families`]) → [`enrich`] → [`detect`] → [`sinks`] →
//! [`server`]. The floors (a module imports only its own floor and those below; checked by
//! `tests/architecture.rs`):
//!
//! 0. [`model`], [`families`] — the vocabulary: events, findings, severities, the record schema, and what
//!    each event family means; [`build_info`] (version, revision) and [`logging`] (log setup, field
//!    formatting), which depend on nothing.
//! 1. [`telemetry`] — the metrics registry and its closed label types.
//! 2. [`probes`] — kernel programs, attach table, ring buffer, kernel counters.
//! 3. [`enrich`] — redaction, the process tree, file-path resolution.
//! 4. [`detect`] — rules and baselines to findings.
//! 5. [`sinks`] — JSON lines and OTLP.
//! 6. [`server`] — HTTP.
//! 7. [`config`], [`cli`], [`pipeline`], [`gameday`], [`service`] — the composition root, the command
//!    line and the service manager (systemd readiness).
pub mod build_info;
pub mod cli;
pub mod config;
pub mod detect;
pub mod enrich;
pub mod families;
pub mod gameday;
pub mod limits;
pub mod logging;
pub mod model;
pub mod pipeline;
pub mod preflight;
pub mod privilege;
pub mod probes;
pub mod server;
pub mod service;
pub mod sinks;
pub mod tamper;
pub mod telemetry;
pub mod web;
