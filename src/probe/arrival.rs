//! When a response chunk (or the response head) arrived: the moment the HTTP connection task
//! handed it to the request, not the later moment the request's own task was polled to take it.
//!
//! When hundreds of streams receive a chunk in the same instant (a wave of first tokens, or
//! every stream's next token on a synchronised server), the runtime runs every ready
//! connection task (read the socket, hand the chunk over, wake the request) and then every
//! woken request task (take the chunk, decode it) in turn. Stamped in the request task, the
//! last chunk of the wave would carry every other stream's decoding in its timing. Stamped
//! when its request is woken, it carries only the socket reads ahead of it: the waker the
//! request polls the body with ([`Arrival`]) notes the time when hyper wakes it, and the
//! chunk that poll then returns is dated by that wake.
//!
//! Never early, only ever late: a chunk that was ready without a wake (already buffered when
//! the request asked) is dated when it is taken, and a wake during the request's own poll (a
//! future that yields by waking itself, or, on a multi-threaded runtime, data arriving while
//! the poll runs) dates nothing, since it may precede the data the next poll returns.
//! Does not: decode, enforce timeouts (`request.rs`), or read the socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use tokio::time::Instant;

/// Dates a request's chunks by the wake that brought them. One per request, reused for every
/// chunk: the waker it polls with is built once.
pub(super) struct Arrival {
    stamp: Arc<Stamp>,
    waker: Waker,
}

/// The waker's state: notes when it was first woken since the request last polled through it,
/// then wakes the request's own task.
#[derive(Default)]
struct Stamp {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The request task's waker, as of its latest poll.
    waker: Option<Waker>,
    /// The first wake since the last poll, outside a poll.
    woken_at: Option<Instant>,
    /// A poll is running: its wakes are not arrivals.
    polling: bool,
}

impl Default for Arrival {
    fn default() -> Self {
        let stamp = Arc::new(Stamp::default());
        Arrival {
            waker: Waker::from(stamp.clone()),
            stamp,
        }
    }
}

impl Arrival {
    /// Polls `future` (the body's next chunk) with a waker that stamps its wake-up; returns the
    /// output with the time it arrived: the wake that led to this poll, or now if it was ready
    /// without one. A wake that led to nothing (the poll was still pending) dates nothing.
    pub(super) fn poll<F: Future>(
        &self,
        future: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<(F::Output, Instant)> {
        let woken_at = {
            let mut inner = self.stamp.lock();
            match &inner.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.waker = Some(cx.waker().clone()),
            }
            inner.polling = true;
            inner.woken_at.take()
        };
        let polled = future.poll(&mut Context::from_waker(&self.waker));
        self.stamp.lock().polling = false;
        match polled {
            Poll::Ready(out) => Poll::Ready((out, woken_at.unwrap_or_else(Instant::now))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stamp {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for Stamp {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut inner = self.lock();
        if !inner.polling {
            inner.woken_at.get_or_insert_with(Instant::now);
        }
        // Waking only queues the task (it is polled later, never from inside this call), so
        // the lock is not held across a poll.
        if let Some(w) = &inner.waker {
            w.wake_by_ref();
        }
    }
}

/// `future`'s output and when it arrived (see [`Arrival::poll`]).
pub(super) async fn next<F: Future>(arrival: &Arrival, future: F) -> (F::Output, Instant) {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| arrival.poll(future.as_mut(), cx)).await
}

#[cfg(test)]
mod tests {
    use std::task::Waker;
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    /// Polls `arrival` over `rx` once with a waker that does nothing.
    fn poll_once(
        arrival: &Arrival,
        rx: &mut oneshot::Receiver<u8>,
    ) -> Poll<(Result<u8, oneshot::error::RecvError>, Instant)> {
        arrival.poll(Pin::new(rx), &mut Context::from_waker(Waker::noop()))
    }

    /// The request's task is busy elsewhere for this long before it polls again.
    const BUSY: Duration = Duration::from_millis(20);

    /// Sends `value`, stays busy, then polls: the value must be dated by the send's wake, not
    /// by the poll [`BUSY`] later.
    fn sent_then_taken_late(
        arrival: &Arrival,
        tx: oneshot::Sender<u8>,
        rx: &mut oneshot::Receiver<u8>,
        value: u8,
    ) {
        let sent = Instant::now();
        tx.send(value).unwrap();
        let woken = Instant::now();
        std::thread::sleep(BUSY);
        let Poll::Ready((got, at)) = poll_once(arrival, rx) else {
            panic!("ready after the send");
        };
        assert_eq!(got.unwrap(), value);
        assert!(
            sent <= at && at <= woken,
            "{at:?} not in [{sent:?}, {woken:?}]"
        );
    }

    #[test]
    fn a_chunk_is_dated_by_the_wake_that_brought_it_not_by_the_later_poll() {
        let arrival = Arrival::default();
        let (tx, mut rx) = oneshot::channel();
        assert!(poll_once(&arrival, &mut rx).is_pending());
        sent_then_taken_late(&arrival, tx, &mut rx, 7);
    }

    #[test]
    fn a_wake_that_made_nothing_ready_dates_nothing() {
        let arrival = Arrival::default();
        let (tx, mut rx) = oneshot::channel();
        assert!(poll_once(&arrival, &mut rx).is_pending());
        // A wake with nothing behind it (e.g. a channel's own bookkeeping)...
        arrival.waker.wake_by_ref();
        std::thread::sleep(BUSY);
        assert!(poll_once(&arrival, &mut rx).is_pending());
        // ...is forgotten by the poll that found nothing: the chunk is dated by its own wake.
        std::thread::sleep(BUSY);
        sent_then_taken_late(&arrival, tx, &mut rx, 1);
    }

    /// Pending once, waking itself as it goes (as a future out of budget does), then ready.
    struct YieldsOnce(bool);

    impl Future for YieldsOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if std::mem::replace(&mut self.0, true) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn a_wake_during_the_requests_own_poll_dates_nothing() {
        let arrival = Arrival::default();
        let mut future = std::pin::pin!(YieldsOnce(false));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(arrival.poll(future.as_mut(), cx).is_pending());
        std::thread::sleep(BUSY);
        let before = Instant::now();
        let Poll::Ready(((), at)) = arrival.poll(future.as_mut(), cx) else {
            panic!("ready on the second poll");
        };
        assert!(
            at >= before,
            "dated by its own yield, {:?} early",
            before - at
        );
    }

    #[test]
    fn a_chunk_ready_without_a_wake_is_dated_when_taken() {
        let arrival = Arrival::default();
        let (tx, mut rx) = oneshot::channel();
        tx.send(2).unwrap();
        std::thread::sleep(BUSY);
        let before = Instant::now();
        let Poll::Ready((_, at)) = poll_once(&arrival, &mut rx) else {
            panic!("ready: it was sent before the first poll");
        };
        assert!(at >= before);
    }

    #[tokio::test]
    async fn the_requests_own_task_is_woken_and_gets_the_wake_time() {
        let arrival = Arrival::default();
        let (tx, rx) = oneshot::channel::<u8>();
        let task = tokio::spawn(async move { next(&arrival, rx).await });
        // Let the task poll once and wait.
        tokio::task::yield_now().await;
        let sent = Instant::now();
        tx.send(9).unwrap();
        let woken = Instant::now();
        // This (only) thread stays busy before the woken task can run.
        std::thread::sleep(BUSY);
        let (value, at) = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task was woken")
            .unwrap();
        assert_eq!(value.unwrap(), 9);
        assert!(
            sent <= at && at <= woken,
            "{at:?} not in [{sent:?}, {woken:?}]"
        );
    }
}
