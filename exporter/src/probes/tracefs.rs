//! tracefs: mounted when missing, and tracepoint formats checked against the offsets the probes use.
use std::path::{Path, PathBuf};

pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Mounts tracefs at /sys/kernel/tracing when it is not mounted. Returns the events directory.
pub fn ensure_mounted() -> Result<PathBuf, String> {
    let root = Path::new(TRACEFS);
    let events = root.join("events");
    if events.is_dir() {
        return Ok(events);
    }
    nix::mount::mount(
        Some("tracefs"),
        root,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("tracefs is not mounted and mounting it at {TRACEFS} failed: {e}"))?;
    tracing::info!(path = TRACEFS, "mounted tracefs");
    if events.is_dir() {
        Ok(events)
    } else {
        Err(format!(
            "tracefs mounted at {TRACEFS} but has no events/ directory"
        ))
    }
}

/// Field offsets of one tracepoint, parsed from its `format` file.
#[derive(Debug, Default)]
pub struct Format {
    fields: Vec<(String, usize)>,
}

impl Format {
    pub fn read(events: &Path, category: &str, name: &str) -> Result<Format, String> {
        let path = events.join(category).join(name).join("format");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Format::parse(&text))
    }

    pub fn parse(text: &str) -> Format {
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let mut decl = "";
            let mut offset = None;
            for part in rest.split(';') {
                let part = part.trim();
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if decl.is_empty() {
                    decl = part;
                }
            }
            // The declaration ends with the field name, possibly followed by an array size.
            let name = decl.split_whitespace().last().unwrap_or("");
            let name = name.split('[').next().unwrap_or(name);
            if let Some(off) = offset {
                fields.push((name.to_string(), off));
            }
        }
        Format { fields }
    }

    pub fn offset(&self, field: &str) -> Option<usize> {
        self.fields
            .iter()
            .find(|(n, _)| n == field)
            .map(|(_, o)| *o)
    }

    /// Checks that each `(field, offset)` the probe was compiled with matches this kernel.
    pub fn check(&self, expected: &[(&str, usize)]) -> Result<(), String> {
        for (field, want) in expected {
            match self.offset(field) {
                Some(got) if got == *want => {}
                Some(got) => {
                    return Err(format!(
                        "field {field} is at offset {got}, the probe expects {want}"
                    ))
                }
                None => return Err(format!("field {field} is missing")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_format_file() {
        let f = Format::parse(
            "name: sched_process_exit\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
             \tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n",
        );
        assert_eq!(f.offset("comm"), Some(8));
        assert_eq!(f.offset("group_dead"), Some(32));
        assert!(f.check(&[("group_dead", 32)]).is_ok());
        assert!(f
            .check(&[("group_dead", 24)])
            .unwrap_err()
            .contains("offset 32"));
        assert!(f.check(&[("nope", 1)]).unwrap_err().contains("missing"));
    }
}
