//! tripline: a per-host Linux security-signals exporter.
//!
//! Data flows one way: [`probes`] → decode ([`families`]) → [`enrich`] → [`detect`] → [`sinks`] →
//! [`server`]. The floors (a module imports only its own floor and those below; checked by
//! `tests/architecture.rs`):
//!
//! 0. [`model`], [`families`] — the vocabulary: events, findings, severities, the record schema, and what
//!    each event family means.
//! 1. [`telemetry`] — the metrics registry and its closed label types.
//! 2. [`probes`] — kernel programs, attach table, ring buffer, kernel counters.
//! 3. [`enrich`] — redaction, the process tree, file-path resolution.
//! 4. [`detect`] — rules and baselines to findings.
//! 5. [`sinks`] — JSON lines and OTLP.
//! 6. [`server`] — HTTP.
//! 7. [`config`], [`cli`], [`pipeline`], [`gameday`] — the composition root and the command line.
pub mod cli;
pub mod config;
pub mod detect;
pub mod enrich;
pub mod families;
pub mod gameday;
pub mod limits;
pub mod model;
pub mod pipeline;
pub mod preflight;
pub mod privilege;
pub mod probes;
pub mod server;
pub mod sinks;
pub mod tamper;
pub mod telemetry;
pub mod web;
