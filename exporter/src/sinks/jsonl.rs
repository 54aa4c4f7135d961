//! JSON lines to a file (with size-based rotation) or stdout, written by its own thread behind a bounded
//! queue so a slow disk or a stalled pipe never blocks detection; what does not fit is counted. Events
//! are queued as they are (a shared reference) and rendered by that thread, so with every event logged
//! the rendering runs beside detection, on another core, not in front of it.
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::metrics::counter::Counter;

use super::render::{json_line, EventLines};
use super::JsonlConfig;
use crate::model::record::Record;
use crate::model::Event;
use crate::telemetry::metrics::{Metrics, Stage};

/// Signalled when stdout's reader went away while events were written there (`tripline events |
/// head`); the pipeline treats it like SIGTERM.
pub static STDOUT_CLOSED: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

pub struct JsonlSink {
    tx: Option<SyncSender<Item>>,
    /// Bytes held by the items in the queue (an estimate for events), and the most it may hold.
    queued: Arc<AtomicU64>,
    max_queued: u64,
    thread: Option<JoinHandle<()>>,
    lost: Counter,
}

/// What waits in the queue: an event to render, or a finding's line (rendered by detection, which
/// also hands the finding to the other sinks and the API), with the bytes it holds (counted once, when
/// queued: an event's size walks its strings).
enum Item {
    Event(Arc<Event>, u64),
    Line(String),
}

impl Item {
    fn event(ev: &Arc<Event>) -> Item {
        Item::Event(ev.clone(), ev.held_bytes())
    }

    /// What the item holds in memory.
    fn size(&self) -> u64 {
        match self {
            Item::Line(l) => l.capacity() as u64,
            Item::Event(_, size) => *size,
        }
    }
}

/// Bytes gathered before a write(2) while lines keep coming (a storm): fewer, larger writes.
const WRITE_BUFFER: usize = 256 << 10;

enum Out {
    Stdout(std::io::Stdout),
    File {
        path: PathBuf,
        w: BufWriter<File>,
        written: u64,
        max: u64,
    },
}

impl Out {
    fn open(path: &Path, max: u64) -> std::io::Result<Out> {
        if path == Path::new("-") {
            return Ok(Out::Stdout(std::io::stdout()));
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        let written = f.metadata()?.len();
        Ok(Out::File {
            path: path.to_path_buf(),
            w: BufWriter::with_capacity(WRITE_BUFFER, f),
            written,
            max,
        })
    }

    fn write_line(&mut self, line: &[u8], more_queued: bool) -> std::io::Result<()> {
        match self {
            Out::Stdout(s) => {
                let mut l = s.lock();
                l.write_all(line)?;
                l.write_all(b"\n")?;
                l.flush()
            }
            Out::File {
                path,
                w,
                written,
                max,
            } => {
                if *max > 0 && *written + line.len() as u64 + 1 > *max && *written > 0 {
                    w.flush()?;
                    let mut rotated = path.as_os_str().to_owned();
                    rotated.push(".1");
                    std::fs::rename(&*path, &rotated)?;
                    *w = BufWriter::with_capacity(
                        WRITE_BUFFER,
                        OpenOptions::new().create(true).append(true).open(&*path)?,
                    );
                    *written = 0;
                }
                w.write_all(line)?;
                w.write_all(b"\n")?;
                *written += line.len() as u64 + 1;
                if !more_queued {
                    w.flush()?;
                }
                Ok(())
            }
        }
    }
}

impl JsonlSink {
    pub fn open(config: &JsonlConfig, path: &Path, metrics: &Metrics) -> anyhow::Result<JsonlSink> {
        let mut out = Out::open(path, config.max_bytes).map_err(|e| {
            anyhow::anyhow!("cannot open JSON-lines output {}: {e}", path.display())
        })?;
        let (tx, rx) = sync_channel::<Item>(config.queue);
        let lost = metrics.lost(Stage::jsonl);
        let thread_lost = lost.clone();
        let queued = Arc::new(AtomicU64::new(0));
        let thread_queued = queued.clone();
        let thread = std::thread::Builder::new()
            .name("jsonl".into())
            .spawn(move || {
                let mut stdout_gone = false;
                // Every event is rendered into the same buffers.
                let mut lines = EventLines::default();
                while let Ok(first) = rx.recv() {
                    let mut next = Some(first);
                    while let Some(item) = next.take() {
                        thread_queued.fetch_sub(item.size(), Ordering::Relaxed);
                        next = rx.try_recv().ok();
                        // Flush only when the queue is empty: batches writes under load.
                        if stdout_gone {
                            continue;
                        }
                        let line = match &item {
                            Item::Line(l) => l.as_bytes(),
                            Item::Event(ev, _) => lines.render(ev),
                        };
                        if let Err(e) = out.write_line(line, next.is_some()) {
                            if matches!(out, Out::Stdout(_))
                                && e.kind() == std::io::ErrorKind::BrokenPipe
                            {
                                // `tripline events | head`: the reader is gone; stop cleanly.
                                stdout_gone = true;
                                tracing::info!("stdout was closed by its reader: stopping");
                                STDOUT_CLOSED.notify_one();
                                continue;
                            }
                            thread_lost.inc();
                            tracing::warn!(error = %e, "JSON-lines write failed");
                        }
                    }
                }
            })?;
        Ok(JsonlSink {
            tx: Some(tx),
            queued,
            max_queued: config.queue_bytes,
            thread: Some(thread),
            lost,
        })
    }

    /// Queues an event; the writer thread renders it.
    pub fn write_event(&mut self, ev: &Arc<Event>) {
        self.queue(Item::event(ev));
    }

    /// Queues a record rendered here (findings).
    pub fn write(&mut self, record: &Record) {
        // Over the byte budget: dropped before it is even rendered.
        if self.over_budget() {
            self.lost.inc();
            return;
        }
        self.queue(Item::Line(json_line(record)));
    }

    fn over_budget(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= self.max_queued
    }

    fn queue(&mut self, item: Item) {
        let Some(tx) = &self.tx else { return };
        if self.over_budget() {
            self.lost.inc();
            return;
        }
        let size = item.size();
        self.queued.fetch_add(size, Ordering::Relaxed);
        match tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(size, Ordering::Relaxed);
                self.lost.inc();
            }
        }
    }

    /// Bytes of lines waiting to be written (tests).
    pub fn queued_bytes(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn close(mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::SystemTime;

    use super::*;
    use crate::model::record::Record;

    /// Events are rendered by the writer thread; findings' lines are written as given, in queue order.
    #[test]
    fn events_are_rendered_by_the_writer() {
        use crate::families::encode::{bare_event, exec, header};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let metrics = Metrics::default();
        let mut sink = JsonlSink::open(&JsonlConfig::default(), &path, &metrics).unwrap();
        let mut ev = bare_event(&exec(
            header(tripline_common::kind::EXEC, 0, 9),
            "/bin/x",
            &["x", "a \"b\""],
        ));
        ev.process.args = vec!["x".to_string(), "a \"b\"".into()].into();
        let ev = Arc::new(ev);
        let finding = Record {
            event_name: "tripline.rule.match",
            time: SystemTime::UNIX_EPOCH,
            severity_number: 17,
            severity_text: "ERROR",
            body: "f".into(),
            attributes: vec![],
        };
        sink.write_event(&ev);
        sink.write(&finding);
        sink.write_event(&ev);
        sink.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let event_json = crate::sinks::render::to_json(&crate::sinks::render::event_record(&ev));
        assert_eq!(
            lines,
            vec![
                event_json.clone(),
                crate::sinks::render::to_json(&finding),
                event_json
            ]
        );
        assert_eq!(lines[0]["process.command_args"][1], "a \"b\"");
        assert_eq!(metrics.lost(Stage::jsonl).get(), 0);
    }

    /// An output that stops taking lines (a FIFO nobody reads): the queue holds at most its byte
    /// budget (plus the item that crossed it), and every item beyond is dropped and counted, for
    /// finding lines and for events alike.
    #[test]
    fn a_stuck_output_holds_at_most_the_byte_budget() {
        use crate::families::encode::{bare_event, exec, header};
        let record = Record {
            event_name: "tripline.process.exec",
            time: SystemTime::UNIX_EPOCH,
            severity_number: 9,
            severity_text: "INFO",
            body: "x".repeat(1000),
            attributes: vec![],
        };
        let mut ev = bare_event(&exec(
            header(tripline_common::kind::EXEC, 0, 9),
            "/bin/x",
            &[],
        ));
        ev.process.args = vec!["x".repeat(1000)].into();
        let ev = Arc::new(ev);
        for events in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let fifo = dir.path().join("out");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            // A reader that never reads, so the sink's open for writing does not block.
            let _reader = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap();
            let metrics = Metrics::default();
            let config = JsonlConfig {
                queue_bytes: 65536,
                ..JsonlConfig::default()
            };
            let mut sink = JsonlSink::open(&config, &fifo, &metrics).unwrap();
            let item_size = if events {
                Item::event(&ev).size()
            } else {
                Item::Line(json_line(&record)).size()
            };
            for _ in 0..2000 {
                if events {
                    sink.write_event(&ev);
                } else {
                    sink.write(&record);
                }
                assert!(sink.queued_bytes() <= 65536 + item_size, "events: {events}");
            }
            // 2000 items of ~1 KiB or more: the pipe (64 KiB) and the budget (64 KiB) hold a fraction.
            assert!(metrics.lost(Stage::jsonl).get() > 1000, "events: {events}");
            std::mem::forget(sink); // its writer is blocked on the pipe for good: do not join it
        }
    }
}
