//! One burst: a plan (how many requests, how many in flight, closed or open loop, warm-up)
//! executed by one engine. Modes are data: `Pacing` decides only when the next request may be
//! created; everything else is shared. Live consumers subscribe with a `BurstSink`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::RngExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Target;
use crate::stream::LooksLike;

use super::client::{Client, TargetClient};
use super::lag::LagProbe;
use super::request::{Measured, RequestSpec, cancelled, measure, unsent};
use super::{BurstEvent, BurstResult, BurstSink, Outcome, RequestRecord};

/// When a new request may start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Closed loop: a new request starts the moment one ends, so exactly `concurrency` are in
    /// flight until the tail.
    Closed,
    /// Open loop: Poisson arrivals at this mean rate, capped by `concurrency`. A request held
    /// back by the cap records the wait as `client_wait`.
    Poisson { per_second: f64 },
}

/// What one burst does.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstPlan {
    pub total_requests: u64,
    pub concurrency: u32,
    pub pacing: Pacing,
    /// Sent first, not recorded.
    pub warmup_requests: u32,
}

impl BurstPlan {
    pub fn for_target(target: &Target) -> Self {
        BurstPlan {
            total_requests: u64::from(target.total_requests.get()),
            concurrency: target.concurrency.get(),
            pacing: match target.rate {
                Some(per_second) => Pacing::Poisson { per_second },
                None => Pacing::Closed,
            },
            warmup_requests: target.warmup_requests,
        }
    }
}

/// Everything about a burst that is not the plan.
pub struct BurstOptions {
    pub burst_id: String,
    /// Keep each request's streamed text.
    pub keep_text: bool,
    /// Cap on requests in flight across all targets (`server.max_in_flight`).
    pub limiter: Option<Arc<Semaphore>>,
    /// Becomes `true` to stop: nothing new starts, requests in flight stop at once and are
    /// recorded as `interrupted` with what they measured, and the result is marked interrupted.
    pub cancel: Option<watch::Receiver<bool>>,
    /// The runtime's scheduling-lag probe, shared by concurrent bursts; `None`: the burst
    /// starts one of its own.
    pub lag: Option<LagProbe>,
}

/// A fresh random burst id (12 hex digits).
pub fn new_burst_id() -> String {
    format!("{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff)
}

/// Runs one burst to completion (or cancellation) and returns every recorded request. `sink`
/// sees each recorded request start and end as it happens, on a task of its own: events queue
/// on an unbounded channel, so a slow consumer (a terminal, a contended registry) never delays
/// the engine. Once the burst is over and every event was observed, `sink.finish()` runs; this
/// returns after it.
pub async fn run_burst(
    client: &Client,
    target: Arc<Target>,
    plan: &BurstPlan,
    opts: BurstOptions,
    mut sink: impl BurstSink,
) -> BurstResult {
    let (events, mut rx) = mpsc::unbounded_channel();
    let consumer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            sink.observe(&event);
        }
        sink.finish();
    });
    let burst = execute(client, target, plan, &opts, events).await;
    // Every sender went with the engine: the consumer drains what is left and finishes.
    let _ = consumer.await;
    burst
}

async fn execute(
    client: &Client,
    target: Arc<Target>,
    plan: &BurstPlan,
    opts: &BurstOptions,
    events: mpsc::UnboundedSender<BurstEvent>,
) -> BurstResult {
    let started_at = SystemTime::now();
    // Kept until the burst ends: the last clone of a probe ends its reading task.
    let lag_probe = opts.lag.clone().unwrap_or_default();
    let (http, connection_mode) = client.for_target(&target);
    let mut cancel = opts.cancel.clone();
    let mut engine = Engine {
        http,
        target: target.clone(),
        plan,
        opts,
        events,
        local: Arc::new(Semaphore::new(plan.concurrency.max(1) as usize)),
        protocol: None,
        looks_like: None,
    };

    let mut interrupted = false;
    if plan.warmup_requests > 0 {
        let warm = engine
            .phase(
                0,
                u64::from(plan.warmup_requests),
                Phase::Warmup,
                &mut cancel,
            )
            .await;
        interrupted = warm.interrupted;
    }
    // The recorded requests' interval only: warm-up opens connections, and its lag is in no
    // recorded timing.
    let lag = lag_probe.watch();
    let start = Instant::now();
    let mut records = Vec::new();
    if !interrupted {
        let main = engine
            .phase(
                u64::from(plan.warmup_requests),
                plan.total_requests,
                Phase::Recorded,
                &mut cancel,
            )
            .await;
        interrupted = main.interrupted;
        records = main.records;
    }
    let client_load = lag.finish();
    records.sort_unstable_by_key(|r| r.index);
    BurstResult {
        burst_id: opts.burst_id.clone(),
        target: target.name.clone(),
        started_at,
        total_time: start.elapsed(),
        records,
        connection_mode,
        protocol: engine.protocol.unwrap_or(target.protocol),
        looks_like: engine.looks_like,
        interrupted,
        client: client_load,
    }
}

struct Engine<'a> {
    /// Or why the target's client could not be built.
    http: Result<TargetClient, Arc<str>>,
    target: Arc<Target>,
    plan: &'a BurstPlan,
    opts: &'a BurstOptions,
    /// To the burst's sink; recorded requests only.
    events: mpsc::UnboundedSender<BurstEvent>,
    local: Arc<Semaphore>,
    protocol: Option<crate::config::Protocol>,
    looks_like: Option<LooksLike>,
}

/// Which requests a phase runs: warm-up requests are sent and awaited like any other but
/// neither recorded nor reported to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Recorded,
}

/// What a phase leaves behind.
struct Ran {
    records: Vec<RequestRecord>,
    interrupted: bool,
}

impl Engine<'_> {
    /// Runs `count` requests whose sequence numbers start at `first_sequence`.
    async fn phase(
        &mut self,
        first_sequence: u64,
        count: u64,
        phase: Phase,
        cancel: &mut Option<watch::Receiver<bool>>,
    ) -> Ran {
        let record = phase == Phase::Recorded;
        let phase_start = Instant::now();
        let mut tasks: JoinSet<Measured> = JoinSet::new();
        let mut records = Vec::with_capacity(if record { count as usize } else { 0 });
        let mut next_arrival = phase_start;
        let mut interrupted = false;

        for n in 0..count {
            // Closed loop: the request is "created" when a slot frees, so the local permit wait is
            // not client wait. Open loop: it is created at its arrival time, so it is.
            let acquire = async {
                let scheduled = match self.plan.pacing {
                    Pacing::Closed => {
                        let permit = self.local.clone().acquire_owned().await;
                        (Instant::now(), permit)
                    }
                    Pacing::Poisson { per_second } => {
                        next_arrival += exponential_gap(per_second);
                        tokio::time::sleep_until(next_arrival).await;
                        let permit = self.local.clone().acquire_owned().await;
                        (next_arrival, permit)
                    }
                };
                let global = match &self.opts.limiter {
                    Some(l) => Some(l.clone().acquire_owned().await),
                    None => None,
                };
                (scheduled, global)
            };
            let ((scheduled, local), global) = tokio::select! {
                biased;
                // Requests in flight see the same flag and end with their partial records.
                _ = cancelled(cancel) => { interrupted = true; break; }
                got = acquire => got,
            };
            // The permit may come from a request the interrupt just ended: the flag is set by
            // then, and nothing starts after it.
            if cancel.as_ref().is_some_and(|rx| *rx.borrow()) {
                interrupted = true;
                break;
            }
            let (Ok(local), global) = (local, global.transpose().ok().flatten()) else {
                break; // semaphores are never closed; defensive
            };
            let client_wait = scheduled.elapsed();

            let index = if record { n + 1 } else { 0 };
            // A send fails only once the sink's task is gone (it panicked): measuring goes on.
            if record {
                let _ = self.events.send(BurstEvent::RequestStarted { index });
            }
            let http = self.http.clone();
            let target = self.target.clone();
            let burst_id = self.opts.burst_id.clone();
            let keep_text = self.opts.keep_text;
            let events = record.then(|| self.events.clone());
            let cancel = cancel.clone();
            tasks.spawn(async move {
                let spec = RequestSpec {
                    target: &target,
                    sequence: first_sequence + n,
                    index,
                    burst_id: &burst_id,
                    keep_text,
                    phase_start,
                    cancel,
                };
                let mut measured = match &http {
                    Ok(http) => measure(&http.http, &http.fresh, &spec).await,
                    Err(why) => unsent(&spec, Outcome::Tls, why),
                };
                measured.record.client_wait += client_wait;
                drop((local, global));
                if let Some(tx) = events {
                    let _ = tx.send(BurstEvent::RequestDone(Arc::new(measured.record.clone())));
                }
                measured
            });
            while let Some(done) = tasks.try_join_next() {
                self.collect(done, phase, &mut records);
            }
            // Let the requests already started run before the next one starts: a wave of
            // starts queued in one go would put every later connect, write and first read
            // behind all of them (at 1,000 streams on one core the first request's bytes left
            // 55 ms after its `t0`). Starting one at a time spreads the starts out instead
            // (`start_offset` shows it) and leaves each request's own timing clean.
            tokio::task::yield_now().await;
        }

        loop {
            let next = tokio::select! {
                biased;
                _ = cancelled(cancel), if !interrupted => { interrupted = true; continue; }
                n = tasks.join_next() => n,
            };
            match next {
                Some(done) => self.collect(done, phase, &mut records),
                None => break,
            }
        }
        Ran {
            records,
            interrupted,
        }
    }

    fn collect(
        &mut self,
        done: Result<Measured, tokio::task::JoinError>,
        phase: Phase,
        records: &mut Vec<RequestRecord>,
    ) {
        // Only a panicked task has nothing to give (cancelled requests return their record).
        let Ok(measured) = done else { return };
        if self.protocol.is_none() {
            self.protocol = measured.protocol;
        }
        if self.looks_like.is_none() {
            self.looks_like = measured.looks_like;
        }
        if phase == Phase::Recorded {
            records.push(measured.record);
        }
    }
}

/// An exponentially distributed gap with mean `1 / per_second` (Poisson arrivals).
fn exponential_gap(per_second: f64) -> Duration {
    let u: f64 = rand::rng().random::<f64>();
    // 1 - u is in (0, 1], so the log is finite.
    Duration::from_secs_f64(-(1.0 - u).ln() / per_second)
}
