//! Answers of outside services that every view asks for (NBP's display rate,
//! OpenRouter's credits): asked once for callers at the same moment, reused for a while,
//! and fetched by a task of their own.
//!
//! The task is the point: the fleet view does not hold its rows back for NBP or
//! OpenRouter (issue 14, the first paint). It takes the answer if it is in when the rows
//! are ([`Asked::if_ready`]), else the last one kept, while the fetch goes on and fills
//! the memo for the next refresh. A fetch owned by the caller's future would be
//! cancelled with it and never finish.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The last answer and when it came.
pub(crate) struct Memo<T> {
    kept: Arc<Mutex<Option<(Instant, T)>>>,
    /// Held while a fetch runs: callers at the same moment wait for it, then find its
    /// answer kept.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo {
            kept: Arc::default(),
            fetching: Arc::default(),
        }
    }
}

/// A question put to a [`Memo`]: its answer is being fetched or is already there.
pub(crate) struct Asked<T> {
    task: tokio::task::JoinHandle<T>,
    kept: Arc<Mutex<Option<(Instant, T)>>>,
    on_panic: fn() -> T,
}

impl<T: Clone + Send + 'static> Memo<T> {
    /// Asks for the answer: the kept one while `reuse(answer)` has not passed since it
    /// came, otherwise `fetch`'s, which is then kept. `on_panic` makes the answer of a
    /// fetch that panicked (a bug), which is not kept.
    pub fn ask<F>(&self, reuse: fn(&T) -> Duration, fetch: F, on_panic: fn() -> T) -> Asked<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (kept, fetching) = (self.kept.clone(), self.fetching.clone());
        let task = tokio::spawn(async move {
            let _one = fetching.lock().await;
            if let Some(answer) = fresh(&kept, reuse) {
                return answer;
            }
            let answer = fetch.await;
            *lock(&kept) = Some((Instant::now(), answer.clone()));
            answer
        });
        Asked {
            task,
            kept: self.kept.clone(),
            on_panic,
        }
    }
}

impl<T: Clone> Asked<T> {
    /// Waits for the answer.
    pub async fn answer(self) -> T {
        self.task.await.unwrap_or_else(|_| (self.on_panic)())
    }

    /// The answer if it is in, else the last one kept however old (the fetch goes on),
    /// else `None`.
    pub async fn if_ready(self) -> Option<T> {
        if self.task.is_finished() {
            return Some(self.answer().await);
        }
        lock(&self.kept).as_ref().map(|(_, answer)| answer.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn fresh<T: Clone>(kept: &Mutex<Option<(Instant, T)>>, reuse: fn(&T) -> Duration) -> Option<T> {
    lock(kept)
        .as_ref()
        .filter(|(at, answer)| at.elapsed() < reuse(answer))
        .map(|(_, answer)| answer.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::sync::Notify;

    fn forever(_: &u32) -> Duration {
        Duration::from_secs(3600)
    }

    fn never(_: &u32) -> Duration {
        Duration::ZERO
    }

    /// A fetch that counts itself once `gate` lets it through.
    fn counted(calls: &Arc<AtomicU32>, gate: Arc<Notify>) -> impl Future<Output = u32> {
        let calls = calls.clone();
        async move {
            gate.notified().await;
            calls.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    fn open() -> Arc<Notify> {
        let gate = Arc::new(Notify::new());
        gate.notify_one();
        gate
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_leaves_the_fetch_to_the_next() {
        let memo = Memo::<u32>::default();
        let calls = Arc::new(AtomicU32::new(0));
        let gate = Arc::new(Notify::new());
        // The fetch is held at the gate, nothing is kept: nothing to show yet.
        let first = memo.ask(forever, counted(&calls, gate.clone()), || 0);
        assert_eq!(first.if_ready().await, None);
        // The gate opens; the next caller waits for that same fetch (its own is not run).
        gate.notify_one();
        let second = memo.ask(forever, counted(&calls, gate.clone()), || 0);
        assert_eq!(second.answer().await, 1);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one fetch for both callers"
        );
        // Kept: no fetch while fresh.
        assert_eq!(
            memo.ask(forever, counted(&calls, open()), || 0)
                .answer()
                .await,
            1
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_expired_answer_is_shown_while_the_next_is_fetched() {
        let memo = Memo::<u32>::default();
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(
            memo.ask(never, counted(&calls, open()), || 0)
                .answer()
                .await,
            1
        );
        let gate = Arc::new(Notify::new());
        let asked = memo.ask(never, counted(&calls, gate.clone()), || 0);
        assert_eq!(
            asked.if_ready().await,
            Some(1),
            "the last answer, the fetch held"
        );
        gate.notify_one();
        assert_eq!(
            memo.ask(forever, counted(&calls, open()), || 0)
                .answer()
                .await,
            2
        );
    }

    #[tokio::test]
    async fn a_panicked_fetch_is_not_kept() {
        let memo = Memo::<u32>::default();
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(
            memo.ask(never, async { panic!("a bug") }, || 99)
                .answer()
                .await,
            99
        );
        // Nothing kept, and the next fetch runs.
        assert_eq!(
            memo.ask(never, counted(&calls, open()), || 0)
                .answer()
                .await,
            1
        );
    }
}
