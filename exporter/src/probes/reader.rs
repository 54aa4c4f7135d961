//! The ring-buffer reader: wakes on readiness (batched by `sensor.wakeup_bytes`) or every poll interval,
//! hands each record to the next stage, and drains what is left when asked to stop.
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;

/// Reads `ring` until `stop` changes. `record` gets every record's bytes; `drained` runs after each drain.
pub async fn run(
    ring: RingBuf<MapData>,
    poll_interval: Duration,
    mut stop: watch::Receiver<bool>,
    mut record: impl FnMut(&[u8]),
    mut drained: impl FnMut(),
) {
    // SAFETY: the RingBuf owns its map fd and is moved into the AsyncFd, so the fd stays open for as long
    // as it is registered.
    let mut fd = match unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) } {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!(error = %e, "cannot poll the ring buffer");
            return;
        }
    };
    let mut tick = tokio::time::interval(poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drain = |ring: &mut RingBuf<MapData>| {
        while let Some(item) = ring.next() {
            record(&item);
        }
        drained();
    };
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => drain(fd.get_mut()),
            guard = fd.readable_mut() => {
                let Ok(mut guard) = guard else { break };
                drain(guard.get_inner_mut());
                guard.clear_ready();
            }
        }
    }
    // Drain what is left so shutdown loses nothing already in the ring.
    drain(fd.get_mut());
}
