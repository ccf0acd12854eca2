//! Response bodies: a fixed buffer, or a streaming state machine that hands hyper one event per
//! scheduled instant. One `tokio::time::Sleep` per stream, no task or channel: thousands of
//! concurrent streams cost a timer entry and a few hundred bytes each.
//!
//! Every token's deadline is absolute (request receipt + TTFT + the sum of ITLs), so a late
//! wake-up never pushes later tokens back. The stream counts itself out of `in_flight` just
//! before its final chunk is handed to hyper, so a closed-loop client that starts its next
//! request the instant it sees the end never finds the previous one still counted.
//!
//! Does not: parse requests or choose faults (`handler.rs`), or know any wire format (`wire.rs`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::fault::Fault;
use super::truth::{End, InFlight, Record};
use super::wire::{Ending, Extra, Wire};

/// Spacing of the `trickle` fault's single bytes.
const TRICKLE_GAP: Duration = Duration::from_millis(1);

/// Per-connection state shared with the connection's socket wrapper.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Set by a `reset` fault: the socket is closed with SO_LINGER 0, i.e. a TCP RST.
    pub(crate) abort: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("mock fault: connection reset mid-stream")]
    Reset,
}

/// The body of every mock response.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(Box<StreamBody>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> MockBody {
        MockBody::Full(Some(bytes.into()))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(stream) => stream.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(bytes) => bytes.is_none(),
            MockBody::Stream(stream) => stream.phase == Phase::Done && stream.carry.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// When and what a stream sends.
pub(crate) struct Plan {
    /// `received_at + scheduled_ttft`.
    pub first_token_due: Instant,
    pub itl: Duration,
    /// Each delay is multiplied by a uniform factor in `1 ± jitter`.
    pub jitter: f64,
    /// `None`: endless.
    pub tokens: Option<u64>,
    pub fault: Option<Fault>,
    /// OpenAI's usage chunk (already combined with the usage switch).
    pub include_usage: bool,
    /// Abort the TCP connection on `reset` (HTTP/1); on h2 only the stream is reset.
    pub abort_connection: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preamble,
    Tokens,
    Trailer,
    /// Hang/stall: never wakes again; the connection's end (client or shutdown) drops it.
    Silent,
    Reset {
        flushed: bool,
    },
    Done,
}

pub(crate) struct StreamBody {
    wire: Wire,
    plan: Plan,
    record: Arc<Record>,
    in_flight: InFlight,
    conn: Arc<ConnState>,
    phase: Phase,
    sleep: Pin<Box<Sleep>>,
    next_token: u64,
    /// Absolute deadline of token `next_token`.
    due: Instant,
    /// Event sequence number (OpenAI Responses' `sequence_number`).
    seq: u64,
    extra_sent: bool,
    first_token_at: Option<Instant>,
    /// Trickle: bytes of the current event still to go, one per write.
    carry: Bytes,
    carry_is_token: bool,
    carry_is_final: bool,
    next_byte_due: Instant,
    yield_before_byte: bool,
}

impl StreamBody {
    pub(crate) fn new(
        wire: Wire,
        plan: Plan,
        record: Arc<Record>,
        in_flight: InFlight,
        conn: Arc<ConnState>,
    ) -> StreamBody {
        let due = plan.first_token_due;
        StreamBody {
            wire,
            record,
            in_flight,
            conn,
            phase: Phase::Preamble,
            sleep: Box::pin(tokio::time::sleep_until(due.into())),
            next_token: 0,
            due,
            seq: 0,
            extra_sent: false,
            first_token_at: None,
            carry: Bytes::new(),
            carry_is_token: false,
            carry_is_final: false,
            next_byte_due: due,
            yield_before_byte: false,
            plan,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            if !self.carry.is_empty() {
                return self.poll_trickle(cx);
            }
            match self.phase {
                Phase::Done => return Poll::Ready(None),
                Phase::Silent => return Poll::Pending,
                Phase::Preamble if self.plan.fault == Some(Fault::Hang) => {
                    // Hang: the head has gone out, and then nothing at all, not even the
                    // preamble events.
                    self.phase = Phase::Silent;
                }
                Phase::Preamble => {
                    self.phase = Phase::Tokens;
                    let preamble = self.wire.preamble(&mut self.seq);
                    if !preamble.is_empty() {
                        return self.emit(preamble, false, false);
                    }
                }
                Phase::Reset { flushed: false } => {
                    // Let hyper flush the tokens it has buffered before the connection dies.
                    self.phase = Phase::Reset { flushed: true };
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Phase::Reset { flushed: true } => {
                    self.finish();
                    if self.plan.abort_connection {
                        self.conn.abort.store(true, Ordering::Release);
                    }
                    return Poll::Ready(Some(Err(BodyError::Reset)));
                }
                Phase::Trailer => {
                    let ending = Ending {
                        tokens: self.next_token,
                        since_received: self.record.received_at().elapsed(),
                        since_first_token: self
                            .first_token_at
                            .map_or(Duration::ZERO, |t| t.elapsed()),
                    };
                    let trailer = self
                        .wire
                        .trailer(ending, self.plan.include_usage, &mut self.seq);
                    if trailer.is_empty() {
                        self.finish();
                        return Poll::Ready(None);
                    }
                    return self.emit(trailer, false, true);
                }
                Phase::Tokens => {
                    let i = self.next_token;
                    let half = self.plan.tokens.map(|n| n.div_ceil(2));
                    let cut = matches!(
                        self.plan.fault,
                        Some(Fault::Stall | Fault::Reset | Fault::ErrorEvent)
                    );
                    if cut && Some(i) == half {
                        // The failure strikes when the next token would have been due.
                        ready!(self.poll_until(self.due, cx));
                        match self.plan.fault {
                            Some(Fault::Stall) => self.phase = Phase::Silent,
                            Some(Fault::Reset) => self.phase = Phase::Reset { flushed: false },
                            _ => {
                                let error = self.wire.error_event(&mut self.seq);
                                return self.emit(error, false, true);
                            }
                        }
                        continue;
                    }
                    if self.plan.tokens.is_some_and(|n| i >= n) {
                        self.phase = Phase::Trailer;
                        continue;
                    }
                    ready!(self.poll_until(self.due, cx));
                    if Some(i) == half && !self.extra_sent {
                        self.extra_sent = true;
                        let kind = match self.plan.fault {
                            Some(Fault::Malformed) => Some(Extra::Malformed),
                            Some(Fault::InvalidUtf8) => Some(Extra::InvalidUtf8),
                            Some(Fault::Oversized) => Some(Extra::Oversized),
                            _ => None,
                        };
                        if let Some(extra) = kind.and_then(|k| self.wire.extra(k, i, &mut self.seq))
                        {
                            return self.emit(extra, false, false);
                        }
                    }
                    // A cut fault at the very end (one token) must not mark the token as the
                    // stream's last, or Gemini/TGI would report a clean finish.
                    let cut_at_end = cut && half == self.plan.tokens;
                    let last = self.plan.tokens == Some(i + 1) && !cut_at_end;
                    let token = self.wire.token(i, last, &mut self.seq);
                    self.next_token = i + 1;
                    self.extra_sent = false;
                    self.record.tokens_sent(self.next_token);
                    self.due += jittered(self.plan.itl, self.plan.jitter);
                    let is_final = last && self.wire.last_token_ends();
                    return self.emit(token, true, is_final);
                }
            }
        }
    }

    /// Hands `bytes` to hyper (or to the trickle), recording the first token and, for the final
    /// chunk, counting the stream out first.
    fn emit(
        &mut self,
        bytes: Bytes,
        is_token: bool,
        is_final: bool,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if is_final {
            self.phase = Phase::Done;
        }
        if self.plan.fault == Some(Fault::Trickle) {
            self.carry = bytes;
            self.carry_is_token = is_token;
            self.carry_is_final = is_final;
            // The event's first byte goes now; the rest follow one per `TRICKLE_GAP`.
            self.next_byte_due = Instant::now();
            self.yield_before_byte = false;
            return Poll::Ready(Some(Ok(Frame::data(self.next_byte()))));
        }
        if is_token && self.first_token_at.is_none() {
            self.mark_first_token();
        }
        if is_final {
            self.finish();
        }
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn poll_trickle(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.yield_before_byte {
            // Return Pending between bytes even when the next one is due, so hyper writes
            // (and the kernel sends) each byte on its own instead of coalescing them.
            self.yield_before_byte = false;
            if Instant::now() >= self.next_byte_due {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        ready!(self.poll_until(self.next_byte_due, cx));
        Poll::Ready(Some(Ok(Frame::data(self.next_byte()))))
    }

    fn next_byte(&mut self) -> Bytes {
        let byte = self.carry.split_to(1.min(self.carry.len()));
        if self.carry_is_token && self.first_token_at.is_none() {
            self.mark_first_token();
        }
        self.next_byte_due += TRICKLE_GAP;
        self.yield_before_byte = true;
        if self.carry.is_empty() && self.carry_is_final {
            self.finish();
        }
        byte
    }

    fn mark_first_token(&mut self) {
        let now = Instant::now();
        self.first_token_at = Some(now);
        self.record.first_token(now);
    }

    /// Ready once `deadline` has passed. The sleep is only re-armed when the deadline changes,
    /// and not touched at all when the deadline is already behind us.
    fn poll_until(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }

    /// The planned end: count out of `in_flight` and close the record.
    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.in_flight.release();
        self.record.end(End::Finished);
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        // No-op after `finish`: the record keeps its first end.
        self.record.end(End::Dropped);
    }
}

/// `d` times a uniform factor in `1 ± jitter`.
pub(crate) fn jittered(d: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || d.is_zero() {
        return d;
    }
    d.mul_f64(1.0 + rand::random_range(-jitter..=jitter))
}
