//! `streamprobe serve`: the daemon's composition. One scheduler task per target fires bursts;
//! each burst's events feed the metrics live; each finished burst updates the last-burst gauges,
//! the verdict (`verdicts.rs`), the status board and its result file. Reload, shutdown and
//! systemd notification live here.
//!
//! Invariants: a failed request never fails the burst; a failed burst or a failed write never
//! stops the daemon; a bad reload keeps the old configuration running.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{self, Config, Schedule, Target};
use crate::metrics::{BurstRecorder, Metrics};
use crate::output::result::ResultDocument;
use crate::output::write::{BurstFile, write_burst_file};
use crate::probe::{self, BurstOptions, BurstPlan, BurstResult, Client};
use crate::schedule::{self, Handover, Hooks, Shard, Skip, Ticker};
use crate::server::{self, AdminCommand, ServerState, TriggerError};
use crate::stats::BurstSummary;
use crate::status::{BurstBrief, StatusBoard, TargetStatus, TargetVerdict};
use crate::verdict::window::{BurstSamples, Report};

use super::verdicts::Verdicts;
use super::{AppError, Exit};

/// How `serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: PathBuf,
    /// The config's text when it is built into the binary (`demo`): `config` then only names
    /// it in messages and anchors its relative paths, and a reload re-reads this text.
    pub builtin: Option<&'static str>,
    pub shard: Option<Shard>,
}

/// Counts bursts in flight so shutdown can wait for them.
#[derive(Default)]
struct BurstTracker {
    running: AtomicUsize,
    idle: Notify,
}

struct BurstGuard(Arc<BurstTracker>);

impl BurstTracker {
    fn enter(self: &Arc<Self>) -> BurstGuard {
        self.running.fetch_add(1, Ordering::AcqRel);
        BurstGuard(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for BurstGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What every burst of the daemon shares.
struct BurstContext {
    client: Client,
    /// The scheduling-lag probe every burst shares (one timer and task for the runtime).
    lag: probe::LagProbe,
    metrics: Arc<Metrics>,
    board: Arc<StatusBoard>,
    limiter: Arc<Semaphore>,
    tracker: Arc<BurstTracker>,
    /// Becomes true when shutdown's grace period is over: running bursts stop and are written
    /// as interrupted.
    cancel: watch::Receiver<bool>,
    /// Each target's verdict windows.
    verdicts: Arc<Verdicts>,
    /// Targets already warned about a generic stream that looks like a known dialect: the
    /// warning is logged once per target and process, not once per burst.
    warned_generic: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A scheduled target.
struct Scheduled {
    target: Arc<Target>,
    stop: watch::Sender<bool>,
    trigger: mpsc::Sender<()>,
    /// The driver; once stopped, it yields its state for a successor.
    task: JoinHandle<Handover>,
}

/// What a target's new scheduler takes over from the old one on reload.
struct Predecessor {
    /// The old driver, already told to stop.
    task: JoinHandle<Handover>,
    /// Whether the schedule is unchanged, so the next fire carries over too.
    same_schedule: bool,
}

/// The running daemon: the current config and its schedulers.
struct Daemon {
    options: ServeOptions,
    config: Arc<Config>,
    /// Where `/api/v1/results` reads; follows `results.dir` across reloads.
    results_dir: Arc<RwLock<PathBuf>>,
    ctx: Arc<BurstContext>,
    scheduled: HashMap<String, Scheduled>,
}

pub async fn serve(options: ServeOptions) -> Result<Exit, AppError> {
    let config = load(&options)?;
    // Read once: TLS and auth settings change only on restart (a reload does not re-read them).
    let web = web_security(&config)?;
    let metrics = Arc::new(Metrics::new(&config.buckets)?);
    let board = Arc::new(StatusBoard::new());
    let client = Client::new()?;
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let ctx = Arc::new(BurstContext {
        client,
        lag: probe::LagProbe::new(),
        metrics: metrics.clone(),
        board: board.clone(),
        limiter: Arc::new(Semaphore::new(config.server.max_in_flight.get() as usize)),
        tracker: Arc::new(BurstTracker::default()),
        cancel: cancel_rx,
        verdicts: Arc::new(Verdicts::default()),
        warned_generic: Default::default(),
    });

    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| {
            let context = format!(
                "cannot listen on {} (server.listen in {})",
                config.server.listen,
                config.path.display()
            );
            AppError::runtime(context, e)
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| AppError::runtime("cannot read the listening address", e))?;
    let ready = Arc::new(AtomicBool::new(false));
    let (admin_tx, mut admin_rx) = mpsc::channel(16);
    let results_dir = Arc::new(RwLock::new(config.results.dir.clone()));
    let state = ServerState {
        metrics: metrics.clone(),
        board: board.clone(),
        results_dir: results_dir.clone(),
        admin: config.server.enable_admin_api.then_some(admin_tx),
        ready: ready.clone(),
    };
    let (server_stop_tx, mut server_stop_rx) = watch::channel(false);
    let server_task = tokio::spawn(server::serve(
        listener,
        server::router(state),
        web,
        async move {
            let _ = server_stop_rx.wait_for(|s| *s).await;
        },
    ));

    let mut daemon = Daemon {
        options,
        config: config.clone(),
        results_dir,
        ctx,
        scheduled: HashMap::new(),
    };
    // Handlers first: SIGHUP's default action kills the process, and systemd (or anyone who
    // saw /-/ready) may send it as soon as we report ready.
    let mut signals =
        Signals::new().map_err(|e| AppError::runtime("cannot install signal handlers", e))?;
    daemon.apply(config, None);
    metrics.config_loaded(true);
    ready.store(true, Ordering::Release);
    tracing::info!(listen = %local, targets = daemon.scheduled.len(), "streamprobe serving");
    notify(&[sd_notify::NotifyState::Ready]);

    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = watchdog_tick.tick(), if watchdog.is_some() => notify(&[sd_notify::NotifyState::Watchdog]),
            signal = signals.next() => match signal {
                Signal::Reload => { let _ = daemon.reload(); }
                Signal::Stop => break,
            },
            Some(cmd) = admin_rx.recv() => match cmd {
                AdminCommand::Reload(reply) => { let _ = reply.send(daemon.reload()); }
                AdminCommand::Trigger(name, reply) => { let _ = reply.send(daemon.trigger(&name)); }
            },
        }
    }

    // Shutdown: stop scheduling, give running bursts the grace period, then cancel them; the
    // cancelled bursts still write what they measured, marked interrupted.
    notify(&[sd_notify::NotifyState::Stopping]);
    ready.store(false, Ordering::Release);
    // Admin requests from now on get 503 at once; a handler left waiting for a reply would
    // also hold up the HTTP server's graceful shutdown below.
    drop(admin_rx);
    let grace = daemon.config.server.shutdown_grace;
    tracing::info!(grace_seconds = grace.as_secs_f64(), "shutting down");
    // The grace counts from the signal, not from when every scheduler has stopped.
    let grace_ends = tokio::time::Instant::now() + grace;
    daemon.stop_all().await;
    let tracker = daemon.ctx.tracker.clone();
    if tokio::time::timeout_at(grace_ends, tracker.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; cancelling running bursts");
        let _ = cancel_tx.send(true);
        // Cancelled requests end at once with what they measured; writing the interrupted
        // results is quick. Bounded anyway (a stuck disk).
        let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait_idle()).await;
    }
    let _ = server_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    Ok(Exit::Pass)
}

/// Settings a reload cannot change in a running process: say so rather than ignore them.
fn warn_restart_only(prev: &Config, next: &Config) {
    let mut changed = Vec::new();
    if prev.buckets != next.buckets {
        changed.push("defaults.buckets");
    }
    if prev.server.listen != next.server.listen {
        changed.push("server.listen");
    }
    if prev.server.enable_admin_api != next.server.enable_admin_api {
        changed.push("server.enable_admin_api");
    }
    if prev.server.max_in_flight != next.server.max_in_flight {
        changed.push("server.max_in_flight");
    }
    if !changed.is_empty() {
        tracing::warn!(
            settings = changed.join(", "),
            "changed settings take effect only on restart"
        );
    }
}

/// TLS and basic auth for the web endpoints from `server.web_config` (plain HTTP without it).
/// `check` runs the same validation.
pub(crate) fn web_security(config: &Config) -> Result<server::WebSecurity, AppError> {
    match &config.server.web_config {
        Some(web) => {
            let path = config::web::resolve(&config.path, web);
            Ok(server::WebSecurity::new(config::web::load(&path)?)?)
        }
        None => Ok(server::WebSecurity::default()),
    }
}

fn load(options: &ServeOptions) -> Result<Arc<Config>, AppError> {
    let mut config = match options.builtin {
        Some(text) => config::load_str(text, &options.config)?,
        None => config::load(&options.config)?,
    };
    if let Some(shard) = options.shard {
        config.targets.retain(|t| shard.owns(&t.name));
    }
    Ok(Arc::new(config))
}

fn notify(state: &[sd_notify::NotifyState]) {
    // Silent when not under systemd (no NOTIFY_SOCKET); a failed notification is not fatal.
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

impl Daemon {
    /// Starts schedulers for `config`'s targets, replacing any running ones. Targets that keep
    /// their name keep their metrics and their next fire time when the schedule is unchanged.
    fn apply(&mut self, config: Arc<Config>, previous: Option<&Config>) {
        let mut old = std::mem::take(&mut self.scheduled);
        let keep: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        // Off the board first: a burst of a removed target that is still running checks the
        // board when it ends and deletes the series it recreated (see `spawn_burst`).
        self.ctx.board.retain(&keep);
        self.ctx.verdicts.retain(&keep);
        for (name, s) in &old {
            if !keep.contains(&name.as_str()) {
                let _ = s.stop.send(true);
                self.ctx.metrics.remove_target(name);
                tracing::info!(target_name = %name, "target removed");
            }
        }
        for target in &config.targets {
            let target = Arc::new(target.clone());
            let predecessor = old.remove(&target.name).map(|s| {
                let _ = s.stop.send(true);
                Predecessor {
                    task: s.task,
                    same_schedule: s.target.schedule == target.schedule,
                }
            });
            self.start(target, &config.results, predecessor);
        }
        if let Some(prev) = previous {
            warn_restart_only(prev, &config);
        }
        *self.results_dir.write().unwrap_or_else(|e| e.into_inner()) = config.results.dir.clone();
        self.config = config;
    }

    /// Starts the scheduler of `target`. With a predecessor (reload), the new driver first
    /// takes over its running burst (so bursts of one target never overlap, and `in_flight`
    /// stays right) and, when the schedule is unchanged, its ticker and next fire.
    fn start(
        &mut self,
        target: Arc<Target>,
        results: &config::Results,
        predecessor: Option<Predecessor>,
    ) {
        let endpoint = target.endpoint();
        let period = target.schedule.as_ref().map(Schedule::period);
        self.ctx.metrics.declare_target(&target, &endpoint, period);
        self.ctx.board.upsert(TargetStatus {
            name: target.name.clone(),
            protocol: target.protocol.as_str().to_owned(),
            endpoint,
            model: target.model.clone(),
            schedule: target
                .schedule
                .as_ref()
                .map_or_else(|| "manual (trigger only)".to_owned(), Schedule::to_string),
            next_run: None,
            running: false,
            in_flight: 0,
            recent: Default::default(),
            verdict: None,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let (trigger_tx, trigger_rx) = mpsc::channel(1);
        let ctx = self.ctx.clone();
        let results = results.clone();
        let t = target.clone();
        let task = tokio::spawn(async move {
            let hooks = BoardHooks {
                name: t.name.clone(),
                ctx: ctx.clone(),
            };
            let fire = |lag: Duration| spawn_burst(ctx.clone(), t.clone(), results.clone(), lag);
            let mut start = Handover::default();
            if let Some(p) = predecessor {
                // A stopped driver returns at once; an aborted one (shutdown) hands nothing.
                if let Ok(old) = p.task.await {
                    start.running = old.running;
                    start.pending = old.pending;
                    if p.same_schedule {
                        start.ticking = old.ticking;
                    }
                }
            }
            // The verdict windows come from the files first, so that a restart loses nothing and
            // no burst of this target lands in windows being rebuilt.
            rebuild_verdict(&ctx, &t, &results.dir).await;
            // No schedule: the target only runs when triggered.
            if start.ticking.is_none() {
                start.ticking = t.schedule.clone().map(|s| {
                    let mut ticker = Ticker::new(s);
                    let first = ticker.first(Utc::now(), &t.name, t.run_on_start);
                    (ticker, first)
                });
            }
            schedule::drive(start, t.overlap, &hooks, fire, trigger_rx, stop_rx).await
        });
        self.scheduled.insert(
            target.name.clone(),
            Scheduled {
                target,
                stop: stop_tx,
                trigger: trigger_tx,
                task,
            },
        );
    }

    /// Re-reads the config file. On error the old config keeps running.
    fn reload(&mut self) -> Result<(), String> {
        notify(&[
            sd_notify::NotifyState::Reloading,
            sd_notify::NotifyState::monotonic_usec_now().unwrap_or(sd_notify::NotifyState::Ready),
        ]);
        let result = match load(&self.options) {
            Ok(config) => {
                let previous = self.config.clone();
                self.apply(config, Some(&previous));
                self.ctx.metrics.config_loaded(true);
                tracing::info!(targets = self.scheduled.len(), "configuration reloaded");
                Ok(())
            }
            Err(e) => {
                self.ctx.metrics.config_loaded(false);
                tracing::error!(error = %e, "reload failed; keeping the running configuration");
                Err(e.to_string())
            }
        };
        notify(&[sd_notify::NotifyState::Ready]);
        result
    }

    fn trigger(&self, name: &str) -> Result<(), TriggerError> {
        match self.scheduled.get(name) {
            // A full channel means a trigger is already pending: one is enough.
            Some(s) => {
                let _ = s.trigger.try_send(());
                Ok(())
            }
            None => Err(TriggerError::UnknownTarget),
        }
    }

    /// Stops every scheduler and waits for them, so that no burst can start after this
    /// returns (the shutdown's wait for running bursts relies on it).
    async fn stop_all(&mut self) {
        for s in self.scheduled.values() {
            let _ = s.stop.send(true);
        }
        // A stopped driver returns at once; one bound for all of them is only a safety net
        // (one per driver would add up to seconds with many targets).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        for (name, s) in self.scheduled.drain() {
            let mut task = s.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
            self.ctx.board.set_next_run(&name, None);
        }
    }
}

struct BoardHooks {
    name: String,
    ctx: Arc<BurstContext>,
}

impl BoardHooks {
    /// A reload may remove the target while its driver acts on a tick, and the series written
    /// then would outlive it. The reload takes the target off the board before it deletes its
    /// series, so checking the board *after* writing leaves none behind: either this sees the
    /// target gone and deletes them, or the reload's deletion comes after the write.
    fn forget_if_removed(&self) {
        if !self.ctx.board.has(&self.name) {
            self.ctx.metrics.remove_target(&self.name);
        }
    }
}

impl Hooks for BoardHooks {
    fn skipped(&self, reason: Skip, count: u64) {
        tracing::warn!(target_name = %self.name, reason = reason.as_str(), count, "burst skipped");
        for _ in 0..count {
            self.ctx.metrics.burst_skipped(&self.name, reason);
        }
        self.forget_if_removed();
    }

    fn next_run(&self, at: Option<DateTime<Utc>>) {
        self.ctx.board.set_next_run(&self.name, at);
    }

    fn tick_lag(&self, lag: Duration) {
        self.ctx.metrics.schedule_lag(&self.name, lag);
        self.forget_if_removed();
    }
}

/// Starts one burst of `target` and returns its task. The task never fails: every problem is
/// measured, logged or counted.
fn spawn_burst(
    ctx: Arc<BurstContext>,
    target: Arc<Target>,
    results: config::Results,
    lag: Duration,
) -> JoinHandle<()> {
    let guard = ctx.tracker.enter();
    tokio::spawn(async move {
        let _guard = guard;
        let name = target.name.clone();
        ctx.board.set_running(&name, true);
        let plan = BurstPlan::for_target(&target);
        let options = BurstOptions {
            burst_id: probe::new_burst_id(),
            keep_text: results.include_text,
            limiter: Some(ctx.limiter.clone()),
            cancel: Some(ctx.cancel.clone()),
            lag: Some(ctx.lag.clone()),
        };
        let live = (
            BurstRecorder::new(ctx.metrics.clone(), target.clone()),
            ctx.board.sink(&name),
        );
        let burst = probe::run_burst(&ctx.client, target.clone(), &plan, options, live).await;
        let summary = BurstSummary::from_burst(&burst);
        ctx.metrics.burst_finished(&burst, &summary);
        let verdict = judge_burst(&ctx, &target, &burst).await;
        let file = write_result(&ctx, &target, &burst, &summary, verdict.as_ref(), &results).await;
        log_burst(&burst, &summary, lag);
        warn_generic_once(&ctx, &burst);
        if !ctx.board.has(&name) {
            // The target left the configuration while this burst ran; its requests and the
            // burst's gauges recreated series that the reload had deleted.
            ctx.metrics.remove_target(&name);
            return;
        }
        let (file, pruned) = match file {
            Some(f) => (Some(f.name), f.pruned),
            None => (None, Vec::new()),
        };
        if let Some(report) = &verdict {
            publish_verdict(&ctx, &name, report);
        }
        ctx.board
            .push_burst(&name, BurstBrief::new(&burst, &summary, file));
        // After the push: retention may have deleted the new file too (older than max_age).
        ctx.board.forget_files(&name, &pruned);
        ctx.board.set_running(&name, false);
    })
}

/// Rebuilds `target`'s verdict windows from its result files when it has none for its settings
/// (start-up, a new target, changed `verdict:`), off the async threads, and publishes the
/// verdict they give now.
async fn rebuild_verdict(ctx: &Arc<BurstContext>, target: &Arc<Target>, dir: &std::path::Path) {
    if !ctx.verdicts.needs_rebuild(target, dir) {
        return;
    }
    let (verdicts, t, d) = (ctx.verdicts.clone(), target.clone(), dir.to_owned());
    let started = std::time::Instant::now();
    let rebuilt =
        tokio::task::spawn_blocking(move || verdicts.rebuild(&t, &d, SystemTime::now())).await;
    match rebuilt {
        Ok((report, read)) => {
            tracing::info!(
                target_name = %target.name,
                files = read.files,
                skipped = read.skipped,
                seconds = started.elapsed().as_secs_f64(),
                "verdict windows rebuilt from result files"
            );
            if ctx.board.has(&target.name) {
                publish_verdict(ctx, &target.name, &report);
            }
        }
        Err(e) => tracing::error!(target_name = %target.name, error = %e, "verdict rebuild failed"),
    }
}

/// Adds a finished burst to its target's verdict windows and judges them, off the async
/// threads. `None`: no windows for this target now, or judging failed (logged).
async fn judge_burst(
    ctx: &BurstContext,
    target: &Arc<Target>,
    burst: &BurstResult,
) -> Option<Report> {
    let (verdicts, t) = (ctx.verdicts.clone(), target.clone());
    let (started_at, samples) = (burst.started_at, BurstSamples::from_records(&burst.records));
    let judged = tokio::task::spawn_blocking(move || {
        verdicts.record(&t, started_at, &samples, SystemTime::now())
    })
    .await;
    judged.unwrap_or_else(|e| {
        tracing::error!(target_name = %target.name, error = %e, "verdict failed");
        None
    })
}

/// The verdict on the metrics and the status board.
fn publish_verdict(ctx: &BurstContext, name: &str, report: &Report) {
    ctx.metrics.set_verdict(name, report);
    ctx.board
        .set_verdict(name, TargetVerdict::from_report(report));
}

/// Writes the burst's result file and applies retention, off the async threads. Returns the
/// file's name and what retention deleted, when written; a failure is logged and counted.
async fn write_result(
    ctx: &BurstContext,
    target: &Target,
    burst: &BurstResult,
    summary: &BurstSummary,
    verdict: Option<&Report>,
    results: &config::Results,
) -> Option<BurstFile> {
    let mut document = ResultDocument::new(target, burst, summary, results.include_text);
    if let Some(report) = verdict {
        document = document.with_verdict(report);
    }
    let json = document.to_json();
    let written = {
        let results = results.clone();
        let (name, started_at, burst_id) = (
            target.name.clone(),
            burst.started_at,
            burst.burst_id.clone(),
        );
        tokio::task::spawn_blocking(move || {
            write_burst_file(&results, &name, started_at, &burst_id, &json)
        })
        .await
    };
    match written {
        Ok(Ok(file)) => Some(file),
        Ok(Err(e)) => {
            ctx.metrics.result_write_failed(&target.name);
            tracing::error!(target_name = %target.name, dir = %results.dir.display(), error = %e, "cannot write result file");
            None
        }
        Err(e) => {
            ctx.metrics.result_write_failed(&target.name);
            tracing::error!(target_name = %target.name, error = %e, "result writer task failed");
            None
        }
    }
}

/// A generic stream whose first event looked like a known dialect counted framing, not
/// tokens: say so once per target, with the protocol to use.
fn warn_generic_once(ctx: &BurstContext, burst: &BurstResult) {
    let Some(looks_like) = &burst.looks_like else {
        return;
    };
    let first = ctx
        .warned_generic
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(burst.target.clone());
    if first {
        tracing::warn!(target_name = %burst.target, "{}", looks_like.advice(burst.protocol));
    }
}

fn log_burst(burst: &BurstResult, summary: &BurstSummary, lag: Duration) {
    let p = |f: fn(&crate::stats::Summary) -> f64| summary.ttft.as_ref().map(f);
    tracing::info!(
        target_name = %burst.target,
        burst_id = %burst.burst_id,
        requests = summary.total,
        success = summary.success_count,
        failed = summary.failed_count,
        cancelled = summary.interrupted_count,
        ttft_p50 = p(|s| s.p50),
        ttft_p95 = p(|s| s.p95),
        duration_seconds = burst.total_time.as_secs_f64(),
        schedule_lag_seconds = lag.as_secs_f64(),
        client_lag_seconds = summary.client.lag_p99.map(|d| d.as_secs_f64()),
        interrupted = burst.interrupted,
        "burst finished"
    );
}

enum Signal {
    Reload,
    Stop,
}

/// SIGHUP → reload; SIGTERM/SIGINT → stop.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.hup.recv() => Signal::Reload,
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Arc<BurstContext> {
        Arc::new(BurstContext {
            client: Client::new().unwrap(),
            lag: probe::LagProbe::new(),
            metrics: Arc::new(Metrics::new(&config::Buckets::default()).unwrap()),
            board: Arc::new(StatusBoard::new()),
            limiter: Arc::new(Semaphore::new(1)),
            tracker: Arc::new(BurstTracker::default()),
            cancel: watch::channel(false).1,
            verdicts: Arc::new(Verdicts::default()),
            warned_generic: Default::default(),
        })
    }

    fn on_board(ctx: &BurstContext, name: &str) {
        ctx.board.upsert(TargetStatus {
            name: name.to_owned(),
            protocol: "openai".into(),
            endpoint: "http://127.0.0.1/v1/chat/completions".into(),
            model: None,
            schedule: "every 1s".into(),
            next_run: None,
            running: false,
            in_flight: 0,
            recent: Default::default(),
            verdict: None,
        });
    }

    fn exposition(ctx: &BurstContext) -> String {
        String::from_utf8(ctx.metrics.encode()).unwrap()
    }

    /// A driver acting on a tick of a target a reload just removed (already off the board)
    /// leaves no series of it behind; a configured target keeps its series.
    #[tokio::test]
    async fn a_tick_of_a_removed_target_leaves_no_series() {
        let ctx = ctx();
        on_board(&ctx, "kept");
        for name in ["kept", "gone"] {
            let hooks = BoardHooks {
                name: name.to_owned(),
                ctx: ctx.clone(),
            };
            hooks.tick_lag(Duration::from_millis(3));
            hooks.skipped(Skip::Overlap, 1);
        }
        let text = exposition(&ctx);
        assert!(
            text.contains(r#"streamprobe_schedule_lag_seconds{target="kept"} 0.003"#),
            "{text}"
        );
        assert!(
            text.contains(r#"streamprobe_bursts_skipped_total{reason="overlap",target="kept"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"target="gone""#), "{text}");
    }
}
