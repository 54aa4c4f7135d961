//! Exposition formats: OpenMetrics for clients that ask for it, Prometheus text 0.0.4 otherwise.
//!
//! prometheus-client writes OpenMetrics. The 0.0.4 form differs in three ways handled here: counter
//! families are named with their `_total` suffix in HELP/TYPE, `info`/`unknown`-typed families become
//! gauges/untyped, and there is no `# UNIT` or `# EOF` line.
use prometheus_client::registry::Registry;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// True when the Accept header prefers OpenMetrics (as Prometheus' scraper does).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            part.trim_start()
                .starts_with("application/openmetrics-text")
        })
    })
}

pub fn encode(registry: &Registry, openmetrics: bool) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    if openmetrics {
        Ok(out)
    } else {
        Ok(to_text_004(&out))
    }
}

pub fn to_text_004(om: &str) -> String {
    // First pass: the type of each family (HELP precedes TYPE, so it is needed up front).
    let types: std::collections::HashMap<&str, &str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .collect();
    let renamed = |name: &str| -> String {
        match types.get(name) {
            Some(&"counter") => format!("{name}_total"),
            Some(&"info") => format!("{name}_info"),
            _ => name.to_string(),
        }
    };
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, typ) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let typ = match typ {
                "info" => "gauge",
                "unknown" => "untyped",
                t => t,
            };
            out.push_str(&format!("# TYPE {} {typ}\n", renamed(name)));
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {text}\n", renamed(name)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_counters_and_drops_eof() {
        let om = "# HELP a_events Events.\n# TYPE a_events counter\na_events_total{kind=\"x\"} 1\n\
                  # HELP a_g A gauge.\n# TYPE a_g gauge\na_g 2\n# EOF\n";
        let t = to_text_004(om);
        assert_eq!(
            t,
            "# HELP a_events_total Events.\n# TYPE a_events_total counter\na_events_total{kind=\"x\"} 1\n\
             # HELP a_g A gauge.\n# TYPE a_g gauge\na_g 2\n"
        );
    }

    #[test]
    fn accept_header_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
