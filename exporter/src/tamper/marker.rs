//! The clean-shutdown marker: `<state directory>/tripline.state`, written atomically.
//!
//! While tripline runs it says `running` with a heartbeat rewritten every few seconds; a clean stop
//! rewrites it as `stopped`. Found `running` at start (and its writer is not alive), the previous run
//! ended uncleanly: the gap is from its last heartbeat to now.
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Reason, Tamper};

pub const FILE_NAME: &str = "tripline.state";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase", deny_unknown_fields)]
pub enum State {
    Running {
        pid: u32,
        /// Unix seconds.
        started: u64,
        heartbeat: u64,
    },
    Stopped {
        pid: u32,
        stopped: u64,
    },
}

pub struct Marker {
    path: PathBuf,
    started: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("{path}: cannot write the state marker: {source} (set --state.directory to a writable directory)")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Is `pid` a live process running the same executable as us (another tripline)?
fn is_live_tripline(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let theirs = std::fs::read_link(format!("/proc/{pid}/exe"));
    let ours = std::fs::read_link("/proc/self/exe");
    matches!((theirs, ours), (Ok(a), Ok(b)) if a == b)
}

impl Marker {
    /// Reads the previous marker, writes `running`. Returns the marker and the evidence of an unclean
    /// previous end, if any. `None` marker: another live tripline owns this directory (logged; this
    /// instance keeps no marker).
    pub fn start(
        dir: &Path,
        now: SystemTime,
    ) -> Result<(Option<Marker>, Option<Tamper>), MarkerError> {
        let path = dir.join(FILE_NAME);
        let err = |source| MarkerError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let text = std::fs::read_to_string(&path).ok();
        let previous = text
            .as_deref()
            .and_then(|t| serde_json::from_str::<State>(t).ok());
        let mut evidence = None;
        if text.is_some() && previous.is_none() {
            evidence = Some(Tamper {
                reason: Reason::unclean_stop,
                detail: format!(
                    "the state marker {} was unreadable: the previous run's end is unknown",
                    path.display()
                ),
                gap: None,
            });
        }
        match previous {
            Some(State::Running {
                pid,
                heartbeat,
                started,
            }) => {
                if is_live_tripline(pid) {
                    tracing::warn!(pid, marker = %path.display(), "another tripline runs with this state directory: no unclean-stop tracking for this instance (give each its own --state.directory)");
                    return Ok((None, None));
                }
                let gap = Duration::from_secs(secs(now).saturating_sub(heartbeat));
                evidence = Some(Tamper {
                    reason: Reason::unclean_stop,
                    detail: format!(
                        "the previous tripline (pid {pid}, started at unix {started}) ended without a clean shutdown (killed, OOM, crash or power loss); last heartbeat at unix {heartbeat}: {}s without monitoring",
                        gap.as_secs()
                    ),
                    gap: Some(gap),
                });
            }
            Some(State::Stopped { stopped, .. }) => {
                tracing::info!(
                    gap_seconds = secs(now).saturating_sub(stopped),
                    "the previous run stopped cleanly"
                );
            }
            None => {}
        }
        let m = Marker {
            path,
            started: secs(now),
        };
        m.write(&State::Running {
            pid: std::process::id(),
            started: m.started,
            heartbeat: m.started,
        })?;
        Ok((Some(m), evidence))
    }

    pub fn heartbeat(&self, now: SystemTime) -> Result<(), MarkerError> {
        self.write(&State::Running {
            pid: std::process::id(),
            started: self.started,
            heartbeat: secs(now),
        })
    }

    /// A clean stop: the next start reports nothing.
    pub fn stopped(&self, now: SystemTime) -> Result<(), MarkerError> {
        self.write(&State::Stopped {
            pid: std::process::id(),
            stopped: secs(now),
        })
    }

    fn write(&self, state: &State) -> Result<(), MarkerError> {
        let err = |source| MarkerError::Write {
            path: self.path.display().to_string(),
            source,
        };
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(serde_json::to_string(state).unwrap_or_default().as_bytes())
                .map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    #[test]
    fn clean_stop_then_start_is_quiet_and_unclean_end_names_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let (m, ev) = Marker::start(dir.path(), t(0)).unwrap();
        assert!(ev.is_none());
        let m = m.unwrap();
        m.heartbeat(t(10)).unwrap();
        m.stopped(t(11)).unwrap();
        let (m, ev) = Marker::start(dir.path(), t(20)).unwrap();
        assert!(ev.is_none(), "a clean stop is not tamper");
        m.unwrap().heartbeat(t(30)).unwrap();
        // Killed here: no `stopped`. The pid in the file is ours, which never counts as "alive".
        let (_, ev) = Marker::start(dir.path(), t(95)).unwrap();
        let ev = ev.expect("unclean end reported");
        assert_eq!(ev.reason, Reason::unclean_stop);
        assert_eq!(ev.gap, Some(Duration::from_secs(65)));
        assert!(
            ev.detail.contains("65s without monitoring"),
            "{}",
            ev.detail
        );
    }

    #[test]
    fn garbage_marker_is_reported_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "{not json").unwrap();
        let (m, ev) = Marker::start(dir.path(), t(0)).unwrap();
        assert!(m.is_some());
        let ev = ev.expect("an unreadable marker is evidence too");
        assert!(ev.detail.contains("unreadable") && ev.gap.is_none());
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(text.contains("\"state\":\"running\""), "{text}");
    }
}
