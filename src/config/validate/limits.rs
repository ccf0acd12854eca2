//! Limit checks for a target: when it fires (schedule, overlap), how much one burst does
//! (concurrency, requests, rate, warm-up), and how long and how large one request may get
//! (timeouts, response size). The defaults are named here, each where it is defined.
//!
//! Does not: run timers or compute fire times (`config/schedule.rs`, `src/schedule.rs`).

use std::num::NonZeroU32;
use std::time::Duration;

use crate::config::error::{Problem, problem};
use crate::config::raw::{DurationValue, RawSchedule, Sourced, TargetFields, join};
use crate::config::schedule::{Overlap, Schedule, parse_cron};
use crate::config::units::{DURATION_HINT, format_duration};

type Result<T> = std::result::Result<T, Problem>;

/// Requests in flight at once per burst, when `concurrency` is not set.
const DEFAULT_CONCURRENCY: u32 = 10;
/// The most `concurrency` accepts.
const MAX_CONCURRENCY: u32 = 10_000;
/// Requests per burst, when `total_requests` is not set.
const DEFAULT_TOTAL_REQUESTS: u32 = 100;
/// Unmeasured requests before each burst, when `warmup_requests` is not set.
const DEFAULT_WARMUP_REQUESTS: u32 = 0;
/// Whole request, t0 → end of stream, when `timeout` is not set: 5 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// `first_token_timeout` (t0 → first token) when not set; clamped to a lower `timeout`.
const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(60);
/// `idle_timeout` (longest silence between two body chunks) when not set; clamped to a lower
/// `timeout`.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// `max_response_bytes` when not set: 16 MiB.
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 << 20;
/// `schedule.jitter` when not set: fire exactly on the interval.
const DEFAULT_JITTER: Duration = Duration::ZERO;
/// `schedule.timezone` for cron expressions when not set.
const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::Tz::UTC;
/// `overlap` when not set: a tick that finds the previous burst running is skipped.
const DEFAULT_OVERLAP: Overlap = Overlap::Skip;
/// `run_on_start` when not set: a scheduled target waits for its first tick.
const DEFAULT_RUN_ON_START: bool = false;

/// When a target fires and how much one burst and one request may do.
pub(super) struct Limits {
    pub(super) schedule: Option<Schedule>,
    pub(super) overlap: Overlap,
    pub(super) run_on_start: bool,
    pub(super) concurrency: NonZeroU32,
    pub(super) total_requests: NonZeroU32,
    pub(super) rate: Option<f64>,
    pub(super) warmup_requests: u32,
    pub(super) timeout: Duration,
    pub(super) first_token_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) max_response_bytes: u64,
}

/// Checks schedule, overlap, concurrency, requests, timeouts and response size, in that order.
pub(super) fn limits(f: &TargetFields) -> Result<Limits> {
    let schedule = f.schedule.as_ref().map(schedule).transpose()?;
    let overlap = overlap(f.overlap.as_ref())?;

    let concurrency = match &f.concurrency {
        Some(c) if !(1..=MAX_CONCURRENCY).contains(&c.value) => {
            return Err(problem(
                &c.path,
                format!("must be between 1 and {MAX_CONCURRENCY}, got {}", c.value),
            ));
        }
        Some(c) => c.value,
        None => DEFAULT_CONCURRENCY,
    };
    let total_requests = match &f.total_requests {
        Some(n) if n.value == 0 => {
            return Err(problem(
                &n.path,
                "must be at least 1, got 0; it is the number of requests per burst",
            ));
        }
        Some(n) => n.value,
        None => DEFAULT_TOTAL_REQUESTS,
    };

    let timeout = positive_duration(f.timeout.as_ref())?.unwrap_or(DEFAULT_TIMEOUT);
    let first_token_timeout = bounded_timeout(
        f.first_token_timeout.as_ref(),
        DEFAULT_FIRST_TOKEN_TIMEOUT,
        timeout,
        f.timeout.as_ref(),
    )?;
    let idle_timeout = bounded_timeout(
        f.idle_timeout.as_ref(),
        DEFAULT_IDLE_TIMEOUT,
        timeout,
        f.timeout.as_ref(),
    )?;

    let max_response_bytes = match &f.max_response_bytes {
        Some(s) if s.value.0 == 0 => {
            return Err(problem(
                &s.path,
                "must be above 0, got 0; use a size such as 16MiB",
            ));
        }
        Some(s) => s.value.0,
        None => DEFAULT_MAX_RESPONSE_BYTES,
    };
    Ok(Limits {
        schedule,
        overlap,
        run_on_start: f
            .run_on_start
            .as_ref()
            .map_or(DEFAULT_RUN_ON_START, |s| s.value),
        concurrency: nonzero(concurrency),
        total_requests: nonzero(total_requests),
        rate: f.rate.as_ref().map(|r| r.value.0),
        warmup_requests: f
            .warmup_requests
            .as_ref()
            .map_or(DEFAULT_WARMUP_REQUESTS, |w| w.value),
        timeout,
        first_token_timeout,
        idle_timeout,
        max_response_bytes,
    })
}

fn overlap(raw: Option<&Sourced<String>>) -> Result<Overlap> {
    let Some(o) = raw else {
        return Ok(DEFAULT_OVERLAP);
    };
    match o.value.as_str() {
        "skip" => Ok(Overlap::Skip),
        "queue" => Ok(Overlap::Queue),
        other => Err(problem(
            &o.path,
            format!("unknown overlap policy, got {other:?}; use skip or queue"),
        )),
    }
}

fn schedule(raw: &Sourced<RawSchedule>) -> Result<Schedule> {
    let at = &raw.path;
    let s = &raw.value;
    match (&s.every, &s.cron) {
        (Some(_), Some(_)) => Err(problem(at, "both every and cron are set; use one of them")),
        (None, None) => Err(problem(
            at,
            "needs every or cron, e.g. {every: 5m} or {cron: \"0 */10 * * * *\"}",
        )),
        (Some(DurationValue(every)), None) => every_schedule(at, s, *every),
        (None, Some(expr)) => cron_schedule(at, s, expr),
    }
}

/// `schedule: {every: ..., jitter: ...}`.
fn every_schedule(at: &str, s: &RawSchedule, every: Duration) -> Result<Schedule> {
    if let Some(tz) = &s.timezone {
        return Err(problem(
            join(at, "timezone"),
            format!("only applies to cron, got {tz:?}; remove it"),
        ));
    }
    if every.is_zero() {
        return Err(problem(
            join(at, "every"),
            format!("must be above 0, got 0s; {DURATION_HINT}"),
        ));
    }
    let jitter = s.jitter.map_or(DEFAULT_JITTER, |j| j.0);
    if jitter >= every {
        return Err(problem(
            join(at, "jitter"),
            format!(
                "must be less than every ({}), got {}; lower it",
                format_duration(every),
                format_duration(jitter)
            ),
        ));
    }
    Ok(Schedule::Every { every, jitter })
}

/// `schedule: {cron: ..., timezone: ...}`.
fn cron_schedule(at: &str, s: &RawSchedule, expr: &str) -> Result<Schedule> {
    if s.jitter.is_some() {
        return Err(problem(
            join(at, "jitter"),
            "only applies to every; remove it or use every",
        ));
    }
    let cron = parse_cron(expr).map_err(|why| {
        problem(
            join(at, "cron"),
            format!(
                "invalid cron expression ({why}), got {expr:?}; use 6 fields with seconds (\"0 */10 * * * *\") or 5 without"
            ),
        )
    })?;
    let timezone = match &s.timezone {
        None => DEFAULT_TIMEZONE,
        Some(tz) => tz.trim().parse().map_err(|_| {
            problem(
                join(at, "timezone"),
                format!(
                    "unknown time zone, got {tz:?}; use an IANA name such as UTC or Europe/Berlin"
                ),
            )
        })?,
    };
    Ok(Schedule::Cron {
        expr: expr.to_owned(),
        cron,
        timezone,
    })
}

pub(super) fn positive_duration(raw: Option<&Sourced<DurationValue>>) -> Result<Option<Duration>> {
    match raw {
        Some(d) if d.value.0.is_zero() => Err(problem(
            &d.path,
            format!("must be above 0, got 0s; {DURATION_HINT}"),
        )),
        Some(d) => Ok(Some(d.value.0)),
        None => Ok(None),
    }
}

/// A timeout that must fit inside `timeout`: an explicit value above it is an error, the
/// default is clamped to it.
fn bounded_timeout(
    raw: Option<&Sourced<DurationValue>>,
    default: Duration,
    timeout: Duration,
    timeout_field: Option<&Sourced<DurationValue>>,
) -> Result<Duration> {
    match (positive_duration(raw)?, raw) {
        (Some(d), Some(field)) if d > timeout => {
            let at = timeout_field.map_or("timeout", |t| t.path.as_str());
            Err(problem(
                &field.path,
                format!(
                    "must not exceed the whole-request timeout ({} at {at}), got {}; lower it or raise timeout",
                    format_duration(timeout),
                    format_duration(d)
                ),
            ))
        }
        (Some(d), _) => Ok(d),
        (None, _) => Ok(default.min(timeout)),
    }
}

pub(super) fn nonzero(n: u32) -> NonZeroU32 {
    // Callers check the range first; 1 is a safe floor should that ever change.
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}
