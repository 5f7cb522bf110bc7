//! Waiting for the signal to stop: SIGTERM (systemd, `kill`) or SIGINT (Ctrl-C).

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM.
    Terminate,
    /// SIGINT.
    Interrupt,
}

impl Signal {
    /// `SIGTERM` or `SIGINT`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        }
    }
}

/// Resolves at the first SIGTERM or SIGINT. Where SIGTERM cannot be watched, only SIGINT is.
pub async fn signal() -> Signal {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => Signal::Terminate,
            _ = tokio::signal::ctrl_c() => Signal::Interrupt,
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}
