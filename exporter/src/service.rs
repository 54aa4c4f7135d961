//! Service-manager integration: systemd readiness (`Type=notify`) through `$NOTIFY_SOCKET`.
//! Without the variable (started by hand, in a container) every call is a no-op.

/// Probes attached, HTTP listener bound: `READY=1`.
pub fn notify_ready() {
    send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("probes attached, serving metrics"),
    ]);
}

/// Shutdown started: `STOPPING=1`.
pub fn notify_stopping() {
    send(&[sd_notify::NotifyState::Stopping]);
}

fn send(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}
