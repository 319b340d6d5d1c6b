//! The tracker's stop signal. One [`Trigger`] is fired at shutdown; the server, the
//! reconciliation loop and the drain timer each hold a [`Shutdown`] and finish their
//! current work instead of being aborted mid-write. A watch channel rather than a
//! oneshot, so a handle taken after the signal still sees it.

use tokio::sync::watch;

/// Waits for the stop signal; cheap to clone into every background task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// Fires the stop signal; held by the [`crate::Tracker`] handle.
pub struct Trigger(watch::Sender<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_handle_sees_the_signal_even_one_taken_after_it() {
        let (trigger, early) = channel();
        let waiting = tokio::spawn(async move { early.wait().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        trigger.fire();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("an early handle wakes")
            .unwrap();
        let late = trigger.subscribe();
        tokio::time::timeout(Duration::from_secs(1), late.wait())
            .await
            .expect("a handle taken after the signal returns at once");
    }
}
