//! When a target fires: the validated `Schedule` and `Overlap` policy, parsing cron expressions
//! (croner) and computing the next fire times, for `check`, the status page and staleness alerts.
//!
//! Does not: run timers or apply jitter (that is `src/schedule.rs`, which owns the scheduler).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// When a target fires. `Cron` is much larger than `Every`; there is one per target, built once
/// at load, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Schedule {
    Every {
        every: Duration,
        jitter: Duration,
    },
    Cron {
        /// The expression as written (5-field expressions get seconds `0` when parsed).
        expr: String,
        cron: croner::Cron,
        timezone: chrono_tz::Tz,
    },
}

/// By hand: croner's own Debug dumps every bit of its fields, which would drown any `{:?}` of a
/// `Config` in a log line.
impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every { every, jitter } => f
                .debug_struct("Every")
                .field("every", every)
                .field("jitter", jitter)
                .finish(),
            Schedule::Cron { expr, timezone, .. } => f
                .debug_struct("Cron")
                .field("expr", expr)
                .field("timezone", timezone)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// A tick that finds the previous burst still running is skipped and counted.
    #[default]
    Skip,
    /// At most one pending burst waits for the running one.
    Queue,
}

/// Parses a 6-field (with seconds) or 5-field (seconds = 0) cron expression.
pub(crate) fn parse_cron(expr: &str) -> Result<Cron, String> {
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) && !expr.trim_start().starts_with('@') {
        return Err(format!("has {fields} fields"));
    }
    let cron = parser
        .parse(expr)
        .map_err(|e| cron_message(&e.to_string()))?;
    // An expression can be valid and yet never fire (`0 0 0 30 2 *`).
    cron.find_next_occurrence(&Utc::now(), false)
        .map_err(|_| "never fires".to_owned())?;
    Ok(cron)
}

/// croner's messages are capitalised sentences; config errors are lowercase phrases.
fn cron_message(message: &str) -> String {
    message.trim_end_matches('.').to_lowercase()
}

impl Schedule {
    /// The next `n` fire times strictly after `after`. For `every`, fires are `after + every`,
    /// `after + 2 * every`, ... (jitter ignored: it is applied by the scheduler).
    pub fn next_fires(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        match self {
            Schedule::Every { every, .. } => {
                let Ok(step) = chrono::Duration::from_std(*every) else {
                    return Vec::new();
                };
                (1..=n)
                    .map_while(|k| after.checked_add_signed(step * k as i32))
                    .collect()
            }
            Schedule::Cron { cron, timezone, .. } => {
                let mut fires = Vec::with_capacity(n);
                let mut t = after.with_timezone(timezone);
                while fires.len() < n {
                    match cron.find_next_occurrence(&t, false) {
                        Ok(next) => {
                            fires.push(next.with_timezone(&Utc));
                            t = next;
                        }
                        Err(_) => break,
                    }
                }
                fires
            }
        }
    }

    /// The typical gap between two fires: `every`, or the gap between the next two cron fires
    /// (approximate for irregular expressions such as weekdays only).
    pub fn period(&self) -> Duration {
        match self {
            Schedule::Every { every, .. } => *every,
            Schedule::Cron { .. } => match self.next_fires(Utc::now(), 2).as_slice() {
                [a, b] => (*b - *a).to_std().unwrap_or_default(),
                _ => Duration::ZERO,
            },
        }
    }
}
