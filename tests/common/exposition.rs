//! A Prometheus text exposition (what `/metrics` serves), parsed into series so that tests
//! look values up by name and labels instead of matching text.
//!
//! Does not: validate the format (`promtool` does that in `.ci/run`), or read HELP/TYPE lines,
//! exemplars or timestamps (the daemon writes none of the last two).

use std::collections::BTreeMap;
use std::fmt;

/// One parsed exposition: every series line as (name, labels, value), and the text itself.
pub struct Exposition {
    pub series: Vec<(String, BTreeMap<String, String>, f64)>,
    pub text: String,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let mut series = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (name, labels, value) = parse_series(line);
            series.push((name.to_owned(), labels, value.expect("series value")));
        }
        Exposition {
            series,
            text: text.to_owned(),
        }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = f64> + 'a {
        self.series.iter().filter_map(move |(n, l, v)| {
            (n == name
                && labels
                    .iter()
                    .all(|(k, want)| l.get(*k).is_some_and(|got| got == want)))
            .then_some(*v)
        })
    }

    /// The one series of `name` carrying `labels` (others may exist), if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self.matching(name, labels).collect();
        assert!(found.len() <= 1, "{name} {labels:?} is ambiguous");
        found.first().copied()
    }

    /// The sum over every series of `name` carrying `labels` (0 when there is none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).sum()
    }

    /// The value of the series written exactly as `selector` (`name{k="v",…}` or a bare
    /// name): the same name and the same label set, no more labels, in any order.
    pub fn exact(&self, selector: &str) -> Option<f64> {
        let (name, labels, _) = parse_series(selector);
        self.series
            .iter()
            .find(|(n, l, _)| n == name && *l == labels)
            .map(|(_, _, v)| *v)
    }

    /// Whether any `streamprobe_*` series carries `target="name"`.
    pub fn mentions_target(&self, name: &str) -> bool {
        self.series.iter().any(|(n, l, _)| {
            n.starts_with("streamprobe_") && l.get("target").is_some_and(|t| t == name)
        })
    }
}

/// Shows the `streamprobe_*` series only: a timed-out wait prints what it last saw, and the
/// process and runtime families would bury the ones the test was waiting on.
impl fmt::Debug for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exposition {\n")?;
        for line in self.text.lines() {
            if line.starts_with("streamprobe_") {
                writeln!(f, "  {line}")?;
            }
        }
        f.write_str("}")
    }
}

/// `name{labels} value` (or a selector without the value) into its parts; the value is `None`
/// when there is none.
fn parse_series(line: &str) -> (&str, BTreeMap<String, String>, Option<f64>) {
    let (name_labels, value) = match line.rsplit_once(' ') {
        Some((series, value)) if !value.ends_with('}') => (series, Some(value)),
        _ => (line, None),
    };
    let value = value.map(|v| v.parse().expect("series value"));
    match name_labels.split_once('{') {
        Some((name, rest)) => (
            name,
            parse_labels(rest.strip_suffix('}').expect("labels end with }")),
            value,
        ),
        None => (name_labels, BTreeMap::new(), value),
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label key");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = after[end..].trim_start_matches(',');
    }
    labels
}
