//! The shutdown signal every task listens to: a `watch` channel that flips to `true` once.
//!
//! Also [`Tracker`], which counts live connection tasks so the drain can end as soon as the
//! last one does.
//!
//! Must not decide anything about draining; [`crate::server`] owns the sequence.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

/// Resolves once the flag is `true` (or its sender is gone, which means the server is
/// going away too).
pub async fn signalled(rx: &mut watch::Receiver<bool>) {
    // Drop the borrow inside this function so callers' futures stay `Send`.
    let _ = rx.wait_for(|&s| s).await.map(|_| ());
}

/// Counts live connection tasks so shutdown can wait for the last one.
///
/// Each task holds a [`Tracked`] guard; [`Tracker::wait_idle`] returns as soon as none is
/// left. Unlike "wait until every sender of a channel is dropped", the accept loop holds
/// nothing here, so it can keep answering `503 draining` while the drain completes.
#[derive(Debug, Default)]
pub struct Tracker {
    active: AtomicUsize,
    idle: Notify,
}

/// One live connection task; dropping it ends it as far as the tracker is concerned.
#[derive(Debug)]
pub struct Tracked(Arc<Tracker>);

impl Tracker {
    /// Starts tracking one task.
    pub fn track(self: &Arc<Self>) -> Tracked {
        self.active.fetch_add(1, Ordering::AcqRel);
        Tracked(Arc::clone(self))
    }

    /// Tasks alive now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Resolves once no task is alive.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a drop between the check and the await wakes us.
            notified.as_mut().enable();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn idle_as_soon_as_the_last_task_ends() {
        let tracker = Arc::new(Tracker::default());
        tokio::time::timeout(Duration::from_secs(1), tracker.wait_idle())
            .await
            .expect("idle when nothing runs");
        let a = tracker.track();
        let b = tracker.track();
        let waiter = {
            let tracker = Arc::clone(&tracker);
            tokio::spawn(async move { tracker.wait_idle().await })
        };
        tokio::task::yield_now().await;
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one task is still alive");
        drop(b);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("no panic");
        // A task started during the drain is waited for too.
        let c = tracker.track();
        assert_eq!(tracker.active(), 1);
        drop(c);
        assert_eq!(tracker.active(), 0);
    }
}
