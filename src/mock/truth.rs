//! Ground truth: what the mock did for each request (when it received it, when the first token
//! left for hyper, how late that was against schedule, what it was asked) and the in-flight
//! counters, plus their JSON views for `GET /mock/truth` and `GET /mock/stats`.
//!
//! A request's record is shared between the store and its response body; the body updates it
//! with atomics, so the store's lock is taken once per request (insert) and by readers only.
//!
//! Does not: decide anything about a request; it only remembers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::Protocol;

use super::fault::Fault;

/// How far a request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Still being answered (or hung/stalled on purpose).
    Open,
    /// The response ended as the mock planned it: normal end, error status, in-band error,
    /// refusal or deliberate reset.
    Finished,
    /// The response was dropped before its planned end: the client went away or the server
    /// shut down.
    Dropped,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::Open => "open",
            End::Finished => "finished",
            End::Dropped => "dropped",
        }
    }
}

/// A snapshot of one request's ground truth.
#[derive(Debug, Clone)]
pub struct Truth {
    /// The `X-Request-Id` header, else the sequence number in decimal.
    pub id: String,
    /// 1-based arrival order since the server started (never reset).
    pub seq: u64,
    pub protocol: Protocol,
    pub method: String,
    /// Path and query as requested.
    pub target: String,
    pub fault: Option<Fault>,
    pub status: u16,
    /// When the whole request body had been read; every schedule counts from here.
    pub received_at: Instant,
    /// Seconds from the server start to `received_at` (the JSON view's clock).
    pub received_since_start: Duration,
    /// Planned delay from `received_at` to the first token, jitter applied.
    pub scheduled_ttft: Duration,
    /// When the first token's bytes were handed to hyper.
    pub first_token_at: Option<Instant>,
    /// `first_token_at − received_at`: the TTFT the server actually produced.
    pub first_token_after: Option<Duration>,
    /// `first_token_after − scheduled_ttft` (never negative: tokens are never early).
    pub ttft_lateness: Option<Duration>,
    /// Planned token count; `None` for an endless stream.
    pub tokens_planned: Option<u64>,
    /// Token-bearing events handed to hyper (extra fault events not included).
    pub tokens_sent: u64,
    /// Streams in flight when this request arrived, itself included.
    pub in_flight_at_arrival: u64,
    pub end: End,
    /// When the final chunk (or error/drop) happened.
    pub ended_at: Option<Instant>,
    /// The first 64 KiB of the request body.
    pub request_body: Bytes,
    /// Whether the body was longer than `request_body`.
    pub request_body_truncated: bool,
    /// Headers of interest (lower-case names): request id, content type, user agent, auth
    /// headers (verbatim: the mock is a test double; tests check secrets arrived), `x-mock-*`.
    pub headers: Vec<(String, String)>,
}

/// In-flight counters and, per request, the count at its arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub in_flight: u64,
    /// Highest `in_flight` since start or the last reset.
    pub max_in_flight: u64,
    /// Streaming requests since start or the last reset.
    pub requests: u64,
    /// In arrival order, for the requests still held in the truth store.
    pub arrivals: Vec<Arrival>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub id: String,
    pub seq: u64,
    pub in_flight: u64,
}

/// Fixed facts about a request, known when its record is created.
pub(crate) struct RecordInit {
    pub id: String,
    pub seq: u64,
    pub protocol: Protocol,
    pub method: String,
    pub target: String,
    pub fault: Option<Fault>,
    pub status: u16,
    pub received_at: Instant,
    pub scheduled_ttft: Duration,
    pub tokens_planned: Option<u64>,
    pub in_flight_at_arrival: u64,
    pub request_body: Bytes,
    pub request_body_truncated: bool,
    pub headers: Vec<(String, String)>,
}

const NONE: u64 = u64::MAX;

/// A request's live record: fixed facts plus atomics the body updates.
pub(crate) struct Record {
    init: RecordInit,
    epoch: Instant,
    /// Nanoseconds since `epoch`, `NONE` until set.
    first_token_ns: AtomicU64,
    ended_ns: AtomicU64,
    tokens_sent: AtomicU64,
    end: AtomicU8,
}

impl Record {
    pub(crate) fn first_token(&self, at: Instant) {
        let ns = at.saturating_duration_since(self.epoch).as_nanos() as u64;
        let _ =
            self.first_token_ns
                .compare_exchange(NONE, ns, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub(crate) fn tokens_sent(&self, n: u64) {
        self.tokens_sent.store(n, Ordering::Relaxed);
    }

    /// Records the end once; later calls (e.g. the drop after a planned end) are ignored.
    pub(crate) fn end(&self, end: End) {
        if self
            .end
            .compare_exchange(
                End::Open as u8,
                end as u8,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            let ns = self.epoch.elapsed().as_nanos() as u64;
            self.ended_ns.store(ns, Ordering::Release);
        }
    }

    pub(crate) fn received_at(&self) -> Instant {
        self.init.received_at
    }

    fn snapshot(&self) -> Truth {
        let i = &self.init;
        let at = |ns: u64| (ns != NONE).then(|| self.epoch + Duration::from_nanos(ns));
        let first_token_at = at(self.first_token_ns.load(Ordering::Relaxed));
        let first_token_after = first_token_at.map(|t| t.saturating_duration_since(i.received_at));
        let end = match self.end.load(Ordering::Acquire) {
            x if x == End::Finished as u8 => End::Finished,
            x if x == End::Dropped as u8 => End::Dropped,
            _ => End::Open,
        };
        Truth {
            id: i.id.clone(),
            seq: i.seq,
            protocol: i.protocol,
            method: i.method.clone(),
            target: i.target.clone(),
            fault: i.fault,
            status: i.status,
            received_at: i.received_at,
            received_since_start: i.received_at.saturating_duration_since(self.epoch),
            scheduled_ttft: i.scheduled_ttft,
            first_token_at,
            first_token_after,
            ttft_lateness: first_token_after.map(|a| a.saturating_sub(i.scheduled_ttft)),
            tokens_planned: i.tokens_planned,
            tokens_sent: self.tokens_sent.load(Ordering::Relaxed),
            in_flight_at_arrival: i.in_flight_at_arrival,
            end,
            ended_at: if end == End::Open {
                None
            } else {
                at(self.ended_ns.load(Ordering::Acquire))
            },
            request_body: i.request_body.clone(),
            request_body_truncated: i.request_body_truncated,
            headers: i.headers.clone(),
        }
    }
}

/// Truth of the last `capacity` requests plus the in-flight counters.
pub(crate) struct Ledger {
    epoch: Instant,
    capacity: usize,
    store: Mutex<Store>,
    seq: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    requests: AtomicU64,
    /// Woken whenever `in_flight` drops to zero.
    idle: Notify,
}

#[derive(Default)]
struct Store {
    by_id: HashMap<String, Arc<Record>>,
    /// (seq, id) in arrival order; the oldest are evicted first.
    order: VecDeque<(u64, String)>,
}

impl Ledger {
    pub(crate) fn new(capacity: usize) -> Ledger {
        Ledger {
            epoch: Instant::now(),
            capacity: capacity.max(1),
            store: Mutex::default(),
            seq: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            idle: Notify::new(),
        }
    }

    /// Resolves once no stream is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a release in between is not missed.
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Counts a streaming request in; returns its sequence number, the in-flight count including
    /// it, and the guard that counts it out.
    pub(crate) fn arrive(self: &Arc<Self>) -> (u64, u64, InFlight) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_in_flight.fetch_max(now, Ordering::AcqRel);
        let guard = InFlight {
            ledger: Some(self.clone()),
        };
        (seq, now, guard)
    }

    pub(crate) fn insert(&self, init: RecordInit) -> Arc<Record> {
        let record = Arc::new(Record {
            init,
            epoch: self.epoch,
            first_token_ns: AtomicU64::new(NONE),
            ended_ns: AtomicU64::new(NONE),
            tokens_sent: AtomicU64::new(0),
            end: AtomicU8::new(End::Open as u8),
        });
        let mut store = self.lock();
        let (seq, id) = (record.init.seq, record.init.id.clone());
        store.by_id.insert(id.clone(), record.clone());
        store.order.push_back((seq, id));
        while store.order.len() > self.capacity {
            let Some((old_seq, old_id)) = store.order.pop_front() else {
                break;
            };
            // A reused X-Request-Id may point at a newer record by now: keep that one.
            if store
                .by_id
                .get(&old_id)
                .is_some_and(|r| r.init.seq == old_seq)
            {
                store.by_id.remove(&old_id);
            }
        }
        record
    }

    pub(crate) fn truth(&self, id: &str) -> Option<Truth> {
        self.lock().by_id.get(id).map(|r| r.snapshot())
    }

    /// All held records, in arrival order.
    pub(crate) fn truths(&self) -> Vec<Truth> {
        let records: Vec<Arc<Record>> = {
            let store = self.lock();
            store
                .order
                .iter()
                .filter_map(|(seq, id)| store.by_id.get(id).filter(|r| r.init.seq == *seq))
                .cloned()
                .collect()
        };
        records.iter().map(|r| r.snapshot()).collect()
    }

    pub(crate) fn stats(&self) -> Stats {
        let arrivals = {
            let store = self.lock();
            store
                .order
                .iter()
                .filter_map(|(seq, id)| store.by_id.get(id).filter(|r| r.init.seq == *seq))
                .map(|r| Arrival {
                    id: r.init.id.clone(),
                    seq: r.init.seq,
                    in_flight: r.init.in_flight_at_arrival,
                })
                .collect()
        };
        Stats {
            in_flight: self.in_flight.load(Ordering::Acquire),
            max_in_flight: self.max_in_flight.load(Ordering::Acquire),
            requests: self.requests.load(Ordering::Relaxed),
            arrivals,
        }
    }

    /// Forgets all truth and restarts the counters; streams in flight stay counted.
    pub(crate) fn reset(&self) {
        let mut store = self.lock();
        store.by_id.clear();
        store.order.clear();
        self.requests.store(0, Ordering::Relaxed);
        self.max_in_flight
            .store(self.in_flight.load(Ordering::Acquire), Ordering::Release);
    }

    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters for a test double, so keep serving.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts one stream out of `in_flight` exactly once: explicitly just before its final chunk
/// is handed to hyper, or on drop.
pub(crate) struct InFlight {
    ledger: Option<Arc<Ledger>>,
}

impl InFlight {
    pub(crate) fn release(&mut self) {
        if let Some(ledger) = self.ledger.take() {
            if ledger.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
                ledger.idle.notify_waiters();
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.release();
    }
}

#[derive(Serialize)]
struct TruthJson<'a> {
    id: &'a str,
    seq: u64,
    protocol: &'static str,
    method: &'a str,
    target: &'a str,
    fault: Option<&'static str>,
    status: u16,
    /// Seconds since the mock started.
    received_at_seconds: f64,
    scheduled_ttft_seconds: f64,
    first_token_at_seconds: Option<f64>,
    first_token_after_seconds: Option<f64>,
    ttft_lateness_seconds: Option<f64>,
    tokens_planned: Option<u64>,
    tokens_sent: u64,
    in_flight_at_arrival: u64,
    end: &'static str,
    ended_at_seconds: Option<f64>,
    request_body: String,
    request_body_truncated: bool,
    headers: serde_json::Map<String, serde_json::Value>,
}

impl Truth {
    fn json(&self, epoch: Instant) -> TruthJson<'_> {
        let since = |t: Instant| t.saturating_duration_since(epoch).as_secs_f64();
        TruthJson {
            id: &self.id,
            seq: self.seq,
            protocol: self.protocol.as_str(),
            method: &self.method,
            target: &self.target,
            fault: self.fault.map(Fault::as_str),
            status: self.status,
            received_at_seconds: since(self.received_at),
            scheduled_ttft_seconds: self.scheduled_ttft.as_secs_f64(),
            first_token_at_seconds: self.first_token_at.map(since),
            first_token_after_seconds: self.first_token_after.map(|d| d.as_secs_f64()),
            ttft_lateness_seconds: self.ttft_lateness.map(|d| d.as_secs_f64()),
            tokens_planned: self.tokens_planned,
            tokens_sent: self.tokens_sent,
            in_flight_at_arrival: self.in_flight_at_arrival,
            end: self.end.as_str(),
            ended_at_seconds: self.ended_at.map(since),
            request_body: String::from_utf8_lossy(&self.request_body).into_owned(),
            request_body_truncated: self.request_body_truncated,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        }
    }
}

pub(crate) fn truths_json(truths: &[Truth], epoch: Instant) -> Vec<u8> {
    let views: Vec<TruthJson<'_>> = truths.iter().map(|t| t.json(epoch)).collect();
    serde_json::to_vec(&views).unwrap_or_default()
}

pub(crate) fn truth_json(truth: &Truth, epoch: Instant) -> Vec<u8> {
    serde_json::to_vec(&truth.json(epoch)).unwrap_or_default()
}

#[derive(Serialize)]
struct StatsJson<'a> {
    in_flight: u64,
    max_in_flight: u64,
    requests: u64,
    arrivals: Vec<ArrivalJson<'a>>,
}

#[derive(Serialize)]
struct ArrivalJson<'a> {
    id: &'a str,
    seq: u64,
    in_flight: u64,
}

pub(crate) fn stats_json(stats: &Stats) -> Vec<u8> {
    let view = StatsJson {
        in_flight: stats.in_flight,
        max_in_flight: stats.max_in_flight,
        requests: stats.requests,
        arrivals: stats
            .arrivals
            .iter()
            .map(|a| ArrivalJson {
                id: &a.id,
                seq: a.seq,
                in_flight: a.in_flight,
            })
            .collect(),
    };
    serde_json::to_vec(&view).unwrap_or_default()
}
