//! Bounded waits for state a test cannot be signalled about (a counter reaching a value, a
//! file appearing): look, decide, sleep a little, look again, until a deadline. One loop for
//! every test, so that each failure says what was awaited and what was last seen.
//!
//! Does not: wait on anything that can be awaited directly (a channel, a socket, a child's
//! notification); those tests await the signal itself.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How long to sleep between two looks: short next to every timeout the tests use, long
/// enough not to load a busy two-core machine with scrapes.
const POLL: Duration = Duration::from_millis(50);

/// Looks with `look` until `done` holds for what it saw, and returns that; after `timeout`,
/// fails the test naming `what` and the last thing seen.
pub async fn wait_for<S: Debug>(
    what: &str,
    timeout: Duration,
    look: impl AsyncFnMut() -> S,
    done: impl Fn(&S) -> bool,
) -> S {
    match poll_until(timeout, look, done).await {
        Ok(seen) => seen,
        Err(last) => panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:?}"),
    }
}

/// Like [`wait_for`], but a timeout is a value, not a failure: `Err` holds the last thing seen.
/// The last look happens at or after the deadline, so a condition that holds by then counts.
pub async fn poll_until<S>(
    timeout: Duration,
    mut look: impl AsyncFnMut() -> S,
    done: impl Fn(&S) -> bool,
) -> Result<S, S> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = look().await;
        if done(&seen) {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(POLL).await;
    }
}
