//! How the config spells durations, sizes and rates, both ways: parsing (for `raw.rs`'s serde
//! impls and `run`'s flags) and formatting (for `check`, error messages and `Schedule`'s
//! `Display`), so a value prints the way it would be written.
//!
//! Does not: know about fields or files; callers name the field in their messages.

use std::fmt::Write as _;
use std::time::Duration;

/// The fix for a bad duration; also used by `validate/` for zero durations.
pub const DURATION_HINT: &str =
    "use a number with a unit (250ms, 30s, 5m, 1h, 30d) or a bare number of seconds";

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit_seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        // Checked: a long sum of large parts must be an error, not an overflow panic.
        total = total.checked_add(Duration::try_from_secs_f64(number * unit_seconds).ok()?)?;
    }
    Some(total)
}

pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..number_len].parse().ok()?;
    let multiplier: u64 = match text[number_len..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    let bytes = number * multiplier as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes.fract() == 0.0 && bytes < u64::MAX as f64)
        .then_some(bytes as u64)
}

pub fn parse_rate(text: &str) -> Option<f64> {
    let text = text.trim();
    let (count, per) = match text.split_once('/') {
        Some((count, unit)) => {
            let per = match unit.trim() {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
            (count.trim().parse::<f64>().ok()?, per)
        }
        None => (text.parse::<f64>().ok()?, 1.0),
    };
    let rate = count / per;
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

/// A relative change: `5%` or a fraction `0.05` → 0.05 (≥ 0). A bare number above 1 is refused
/// as ambiguous (5 could mean 5% or 500%). `compare --min-change` and `verdict.min_change`.
pub fn parse_percentage(text: &str) -> Result<f64, String> {
    let s = text.trim();
    let (number, scale) = match s.strip_suffix('%') {
        Some(n) => (n.trim(), 0.01),
        None => (s, 1.0),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            format!("cannot read {s:?}; write a percentage like 5% or a fraction like 0.05")
        })?;
    if scale == 1.0 && value > 1.0 {
        return Err(format!(
            "{s} is ambiguous; write {s}% for a percentage or a fraction like 0.05"
        ));
    }
    Ok(value * scale)
}

/// A fraction as a percentage, the way the config spells it: 0.05 → `5%`, 0.125 → `12.5%`.
pub fn format_percentage(fraction: f64) -> String {
    let percent = (fraction * 100.0 * 1e6).round() / 1e6;
    format!("{percent}%")
}

/// A duration the way the config spells it: `250ms`, `30s`, `1m30s`, `30d`, `1.5s`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        if d.as_secs() == 0 && d.subsec_nanos() % 1_000_000 == 0 {
            return format!("{}ms", d.subsec_millis());
        }
        return format!("{}s", d.as_secs_f64());
    }
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

/// A size the way the config spells it: the largest binary unit that divides it (`16MiB`,
/// `512KiB`), else bytes (`1500B`).
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// A rate in requests per second, spelt in the largest whole unit: `2/s`, `30/m`, `0.25/s`.
pub fn format_rate(per_second: f64) -> String {
    for (unit, factor) in [("s", 1.0), ("m", 60.0), ("h", 3600.0)] {
        let n = per_second * factor;
        if (n - n.round()).abs() < 1e-9 && n >= 1.0 {
            return format!("{}/{unit}", n.round());
        }
    }
    format!("{per_second}/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        for (bytes, text) in [
            (16 << 20, "16MiB"),
            (512 << 10, "512KiB"),
            (2 << 30, "2GiB"),
            (1500, "1500B"),
            (1, "1B"),
        ] {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Some(bytes));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("0.25"), Some(Duration::from_millis(250)));
        for bad in ["", "5 min", "5x", "-1", "s", "1s2"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("1KB"), Some(1000));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1.5"), None);
        assert_eq!(parse_size("12 parsecs"), None);
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("2/s"), Some(2.0));
        assert_eq!(parse_rate("120/m"), Some(2.0));
        assert_eq!(parse_rate("0.5"), Some(0.5));
        assert_eq!(parse_rate("0/s"), None);
        assert_eq!(parse_rate("2 per second"), None);
        assert_eq!(parse_rate("2/d"), None);
    }

    #[test]
    fn durations_read_like_config() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(30 * 86400)), "30d");
    }

    #[test]
    fn rates_use_the_largest_whole_unit() {
        assert_eq!(format_rate(2.0), "2/s");
        assert_eq!(format_rate(0.5), "30/m");
        assert_eq!(format_rate(1.0 / 120.0), "30/h");
        assert_eq!(format_rate(0.3), "18/m");
    }

    #[test]
    fn percentages_parse_and_print_as_written() {
        assert_eq!(parse_percentage("5%"), Ok(0.05));
        assert_eq!(parse_percentage(" 12.5 % "), Ok(0.125));
        assert_eq!(parse_percentage("0.05"), Ok(0.05));
        assert!(parse_percentage("5").unwrap_err().contains("ambiguous"));
        assert!(parse_percentage("-1%").unwrap_err().contains("cannot read"));
        assert_eq!(format_percentage(0.05), "5%");
        assert_eq!(format_percentage(0.125), "12.5%");
        assert_eq!(format_percentage(0.0), "0%");
    }
}
