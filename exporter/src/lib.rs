//! tripline: a per-host Linux security-signals exporter.
//!
//! Data flows one way: [`probes`] → [`decode`] → [`enrich`] → [`detect`] → [`sinks`] → [`server`].
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod enrich;
pub mod event;
pub mod gameday;
pub mod limits;
pub mod pipeline;
pub mod preflight;
pub mod privilege;
pub mod probes;
pub mod server;
pub mod sinks;
pub mod tamper;
pub mod web;
