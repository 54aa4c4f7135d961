//! Bounds on every input tripline parses: file sizes, YAML nesting depth, rule counts, and the exit
//! codes the binary maps errors to.
//!
//! YAML nesting is checked by a linear pre-scan before the parser runs, so a hostile file with 100,000
//! nested levels is rejected in microseconds instead of making the parser recurse or crawl.
use std::io::Read;
use std::path::Path;

/// Largest configuration or web configuration file read (bytes).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest policy file read (bytes).
pub const MAX_POLICY_BYTES: u64 = 16 << 20;
/// Largest baseline file read (bytes).
pub const MAX_BASELINE_BYTES: u64 = 256 << 20;
/// Most rules a policy may hold.
pub const MAX_RULES: usize = 10_000;
/// Deepest YAML nesting accepted (block indentation levels plus flow brackets).
pub const MAX_NESTING: usize = 64;

/// Exit codes of the `tripline` binary (documented in docs/configuration.md).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// `baseline diff`: the new baseline adds keys (a CI gate); `gameday`: a scenario was not detected.
    pub const DIFF_FOUND: u8 = 1;
    /// Usage error: an unknown flag or a flag value that is not allowed (clap's convention).
    pub const USAGE: u8 = 2;
    /// Invalid input file: configuration, web configuration, policy or baseline.
    pub const BAD_INPUT: u8 = 3;
    /// Runtime failure: probes could not load, the port is taken, a write failed.
    pub const RUNTIME: u8 = 4;
}

/// An input file that is too large, too deeply nested or otherwise out of bounds.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the file is larger than {max} bytes; that is not a tripline {what}")]
    TooLarge {
        path: String,
        max: u64,
        what: String,
    },
    #[error("{path}:{line}: YAML nested deeper than {max} levels is not allowed")]
    TooDeep {
        path: String,
        line: usize,
        max: usize,
    },
}

/// Reads a text file of at most `max` bytes (never more is read into memory).
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<String, LimitError> {
    let read_err = |source| LimitError::Read {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf).map_err(read_err)?;
    if buf.len() as u64 > max {
        return Err(LimitError::TooLarge {
            path: path.display().to_string(),
            max,
            what: what.into(),
        });
    }
    String::from_utf8(buf).map_err(|e| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        ))
    })
}

/// A linear upper-bound estimate of YAML nesting: per line, indentation columns plus block sequence
/// markers (`- - -`), plus open flow brackets (`[`, `{`) outside quotes and comments. Real files stay
/// far below; hostile ones are rejected before the parser sees them.
pub fn check_nesting(text: &str, path: &str, max: usize) -> Result<(), LimitError> {
    let mut flow: usize = 0;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut rest = &line.as_bytes()[indent..];
        let mut dashes = 0usize;
        while rest.len() >= 2 && rest[0] == b'-' && (rest[1] == b' ') {
            dashes += 1;
            rest = &rest[2..];
        }
        // Two columns of indentation per level is the YAML norm; one is allowed, so count columns/1
        // but compare against a generous multiple.
        let block = indent / 2 + dashes;
        let mut quote: Option<u8> = None;
        for &c in line.as_bytes() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'\'' | b'"') => quote = Some(c),
                (None, b'#') => break,
                (None, b'[' | b'{') => flow += 1,
                (None, b']' | b'}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        if block + flow > max {
            return Err(LimitError::TooDeep {
                path: path.into(),
                line: n + 1,
                max,
            });
        }
    }
    Ok(())
}

/// Writes to stdout, returning (not panicking on) errors such as a closed pipe.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// True when the error is stdout's reader having gone away (EPIPE).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn deep_flow_nesting_is_rejected_fast() {
        let text = "[".repeat(100_000);
        let t = Instant::now();
        let e = check_nesting(&text, "x.yml", MAX_NESTING).unwrap_err();
        assert!(e
            .to_string()
            .contains("x.yml:1: YAML nested deeper than 64"));
        // A sanity bound, not a benchmark: the parser took ~18 s on this input.
        assert!(t.elapsed().as_secs() < 5);
    }

    #[test]
    fn deep_block_nesting_is_rejected() {
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&" ".repeat(i * 2));
            text.push_str("a:\n");
        }
        assert!(check_nesting(&text, "x", MAX_NESTING).is_err());
        assert!(check_nesting(&"- ".repeat(1000), "x", MAX_NESTING).is_err());
    }

    #[test]
    fn normal_files_pass() {
        check_nesting(crate::config::DEFAULT_CONFIG, "c", MAX_NESTING).unwrap();
        check_nesting(crate::detect::policy::DEFAULT_POLICY, "p", MAX_NESTING).unwrap();
        check_nesting("a: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n", "q", MAX_NESTING).unwrap();
    }

    #[test]
    fn bounded_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; 100]).unwrap();
        assert!(read_bounded(&p, 99, "config")
            .unwrap_err()
            .to_string()
            .contains("larger than 99 bytes"));
        assert_eq!(read_bounded(&p, 100, "config").unwrap().len(), 100);
    }
}
