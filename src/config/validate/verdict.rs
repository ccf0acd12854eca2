//! `verdict:` checks: the daemon's baseline and recent windows and its rule (DESIGN §10). Unlike
//! the other blocks, `verdict:` merges field by field: a target that sets only `min_change` keeps
//! the windows of `defaults.verdict`. The defaults are named here.
//!
//! Does not: judge anything (`verdict/`), or keep windows (`verdict/window.rs`).

use std::time::Duration;

use crate::config::error::{Problem, problem};
use crate::config::model::{VerdictSettings, VerdictStatistic};
use crate::config::raw::{RawVerdict, join};
use crate::config::units::{DURATION_HINT, format_duration, format_percentage};

type Result<T> = std::result::Result<T, Problem>;

/// `verdict.baseline` when not set: a week of bursts before the recent window.
const DEFAULT_BASELINE: Duration = Duration::from_secs(7 * 86400);
/// `verdict.recent` when not set: the last hour's bursts are compared with the baseline.
const DEFAULT_RECENT: Duration = Duration::from_secs(3600);
/// `verdict.min_change` when not set: changes below 5% are no regression.
const DEFAULT_MIN_CHANGE: f64 = 0.05;
/// `verdict.min_samples` when not set: fewer samples on a side give `insufficient_data`.
const DEFAULT_MIN_SAMPLES: u32 = 30;
/// `verdict.statistic` when not set: TTFT (and TPOT) p90.
const DEFAULT_STATISTIC: VerdictStatistic = VerdictStatistic::P90;

/// DESIGN §10's defaults, what a target without `verdict:` gets.
impl Default for VerdictSettings {
    fn default() -> VerdictSettings {
        VerdictSettings {
            baseline: DEFAULT_BASELINE,
            recent: DEFAULT_RECENT,
            min_change: DEFAULT_MIN_CHANGE,
            min_samples: DEFAULT_MIN_SAMPLES,
            statistic: DEFAULT_STATISTIC,
        }
    }
}

/// One field's value and the path it came from: the target's own, else the default's.
fn pick<T: Clone>(
    own: Option<&RawVerdict>,
    defaults: Option<&RawVerdict>,
    at: &str,
    field: &str,
    get: impl Fn(&RawVerdict) -> Option<T>,
) -> Option<(T, String)> {
    if let Some(v) = own.and_then(&get) {
        return Some((v, join(&join(at, "verdict"), field)));
    }
    defaults
        .and_then(get)
        .map(|v| (v, format!("defaults.verdict.{field}")))
}

/// Validates a target's `verdict:` merged with `defaults.verdict`. `at` is the target's path.
pub(super) fn verdict(
    own: Option<&RawVerdict>,
    defaults: Option<&RawVerdict>,
    at: &str,
) -> Result<VerdictSettings> {
    let window =
        |field: &str, get: fn(&RawVerdict) -> Option<Duration>, default: Duration| match pick(
            own, defaults, at, field, get,
        ) {
            Some((d, path)) if d.is_zero() => Err(problem(
                path,
                format!("must be above 0, got 0s; {DURATION_HINT}"),
            )),
            Some((d, path)) => Ok((d, Some(path))),
            None => Ok((default, None)),
        };
    let (baseline, baseline_path) =
        window("baseline", |v| v.baseline.map(|d| d.0), DEFAULT_BASELINE)?;
    let (recent, recent_path) = window("recent", |v| v.recent.map(|d| d.0), DEFAULT_RECENT)?;
    if recent >= baseline {
        // Blame the field that was set (the recent one when both were).
        let path = recent_path
            .or(baseline_path)
            .unwrap_or_else(|| join(&join(at, "verdict"), "recent"));
        return Err(problem(
            path,
            format!(
                "recent must be shorter than baseline, got recent {} and baseline {}; the baseline window is the bursts of the last baseline before the recent ones",
                format_duration(recent),
                format_duration(baseline)
            ),
        ));
    }
    let min_change = match pick(own, defaults, at, "min_change", |v| {
        v.min_change.map(|c| c.0)
    }) {
        Some((c, path)) if c >= 1.0 => {
            return Err(problem(
                path,
                format!(
                    "must be below 100%, got {}; it is the smallest relative change that counts, e.g. 5%",
                    format_percentage(c)
                ),
            ));
        }
        Some((c, _)) => c,
        None => DEFAULT_MIN_CHANGE,
    };
    let min_samples = match pick(own, defaults, at, "min_samples", |v| v.min_samples) {
        Some((0, path)) => {
            return Err(problem(
                path,
                "must be at least 1, got 0; it is how many samples each window needs for a verdict",
            ));
        }
        Some((n, _)) => n,
        None => DEFAULT_MIN_SAMPLES,
    };
    let statistic = match pick(own, defaults, at, "statistic", |v| v.statistic.clone()) {
        Some((name, path)) => VerdictStatistic::ALL
            .into_iter()
            .find(|s| s.as_str() == name.trim())
            .ok_or_else(|| {
                problem(
                    path,
                    format!("unknown statistic, got {name:?}; use p50, p90, p99 or mean"),
                )
            })?,
        None => DEFAULT_STATISTIC,
    };
    Ok(VerdictSettings {
        baseline,
        recent,
        min_change,
        min_samples,
        statistic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::{DurationValue, PercentageValue};

    fn raw(baseline: Option<u64>, recent: Option<u64>, min_change: Option<f64>) -> RawVerdict {
        RawVerdict {
            baseline: baseline.map(|s| DurationValue(Duration::from_secs(s))),
            recent: recent.map(|s| DurationValue(Duration::from_secs(s))),
            min_change: min_change.map(PercentageValue),
            ..RawVerdict::default()
        }
    }

    #[test]
    fn defaults_apply_and_targets_override_field_by_field() {
        let none = verdict(None, None, "targets[0]").unwrap();
        assert_eq!(none.baseline, Duration::from_secs(7 * 86400));
        assert_eq!(none.recent, Duration::from_secs(3600));
        assert_eq!(none.min_change, 0.05);
        assert_eq!(none.min_samples, 30);
        assert_eq!(none.statistic, VerdictStatistic::P90);
        assert_eq!(none, VerdictSettings::default());
        let defaults = raw(Some(86400), Some(600), None);
        let own = raw(None, None, Some(0.1));
        let v = verdict(Some(&own), Some(&defaults), "targets[0]").unwrap();
        assert_eq!(v.baseline, Duration::from_secs(86400));
        assert_eq!(v.recent, Duration::from_secs(600));
        assert_eq!(v.min_change, 0.1);
    }

    #[test]
    fn a_recent_window_as_long_as_the_baseline_is_refused_where_it_was_set() {
        let defaults = raw(Some(3600), None, None);
        let err = verdict(None, Some(&defaults), "targets[1]").unwrap_err();
        assert_eq!(err.path, "defaults.verdict.baseline");
        let own = raw(None, Some(7200), None);
        let err = verdict(Some(&own), Some(&defaults), "targets[1]").unwrap_err();
        assert_eq!(err.path, "targets[1].verdict.recent");
    }
}
