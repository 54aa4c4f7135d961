//! tripline: a per-host Linux security-signals exporter.
//!
//! Data flows one way: [`probes`] → [`decode`] → [`enrich`] → [`detect`] → [`sinks`] → [`server`].
pub mod build_info;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod enrich;
pub mod event;
pub mod gameday;
pub mod logging;
pub mod pipeline;
pub mod probes;
pub mod server;
pub mod service;
pub mod sinks;
