//! The shutdown signal every task listens to: a `watch` channel that flips to `true` once.
//!
//! Must not decide anything about draining; [`crate::server`] owns the sequence.

use tokio::sync::watch;

/// Resolves once the flag is `true` (or its sender is gone, which means the server is
/// going away too).
pub async fn signalled(rx: &mut watch::Receiver<bool>) {
    // Drop the borrow inside this function so callers' futures stay `Send`.
    let _ = rx.wait_for(|&s| s).await.map(|_| ());
}
