//! When a target fires: the validated `Schedule` and `Overlap` policy, parsing cron expressions
//! (croner) and computing the next fire times, for `check`, the status page and staleness alerts;
//! how a schedule reads (`Display`) and when two are the same (`PartialEq`, what a reload
//! compares).
//!
//! Does not: run timers or apply jitter (that is `src/schedule.rs`, which owns the scheduler).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::units::format_duration;

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

/// `every 5m`, `every 5m, jitter 20s`, `cron "0 */5 * * * *" (Europe/Berlin)`: what `check` and
/// the status page show. Jitter only delays a fire (0 to `jitter`), never advances it: no "±".
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every { every, jitter } if jitter.is_zero() => {
                write!(f, "every {}", format_duration(*every))
            }
            Schedule::Every { every, jitter } => write!(
                f,
                "every {}, jitter {}",
                format_duration(*every),
                format_duration(*jitter)
            ),
            Schedule::Cron { expr, timezone, .. } => write!(f, "cron \"{expr}\" ({timezone})"),
        }
    }
}

/// Same schedule, same fires: the parsed `cron` follows from `expr`, so it is not compared.
impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Schedule::Every { every, jitter },
                Schedule::Every {
                    every: other_every,
                    jitter: other_jitter,
                },
            ) => every == other_every && jitter == other_jitter,
            (
                Schedule::Cron { expr, timezone, .. },
                Schedule::Cron {
                    expr: other_expr,
                    timezone: other_timezone,
                    ..
                },
            ) => expr == other_expr && timezone == other_timezone,
            _ => false,
        }
    }
}

impl Eq for Schedule {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A validated schedule, built the way the config builds it.
    fn schedule(yaml: &str) -> Schedule {
        let file = format!(
            "targets:\n  - name: t\n    url: http://127.0.0.1:9/\n    method: GET\n    schedule: {yaml}\n"
        );
        let config = crate::config::load_str(&file, Path::new("test.yaml")).expect("valid");
        config.targets[0].schedule.clone().expect("scheduled")
    }

    #[test]
    fn schedules_read_as_check_prints_them() {
        assert_eq!(schedule("{every: 5m}").to_string(), "every 5m");
        assert_eq!(
            schedule("{every: 5m, jitter: 20s}").to_string(),
            "every 5m, jitter 20s"
        );
        assert_eq!(
            schedule("{cron: \"0 */5 * * * *\", timezone: Europe/Berlin}").to_string(),
            "cron \"0 */5 * * * *\" (Europe/Berlin)"
        );
    }

    #[test]
    fn schedules_are_equal_by_value() {
        let every = "{every: 5m, jitter: 20s}";
        assert_eq!(schedule(every), schedule(every));
        assert_ne!(schedule(every), schedule("{every: 5m}"));
        assert_ne!(schedule(every), schedule("{every: 5m, jitter: 10s}"));
        let cron = "{cron: \"0 */5 * * * *\", timezone: Europe/Berlin}";
        assert_eq!(schedule(cron), schedule(cron));
        assert_ne!(
            schedule(cron),
            schedule("{cron: \"0 */5 * * * *\", timezone: UTC}")
        );
        assert_ne!(
            schedule(cron),
            schedule("{cron: \"0 */10 * * * *\", timezone: Europe/Berlin}")
        );
        assert_ne!(schedule(cron), schedule("{every: 5m}"));
    }
}
