//! Telemetry: the metrics registry with its closed label types, the process self-metrics collector and the
//! exposition formats. Floor 1: imports the model, never a stage. Stages that refresh metrics at scrape
//! time register their own `Collector` (see `probes::SensorCollector`).
pub mod exposition;
pub mod metrics;
pub mod process;
