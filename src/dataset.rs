//! Data sources and templating: CSV rows (any WHATWG encoding) and `{{column}}` / secret
//! substitution into URL, header and body templates.
//!
//! Templates are compiled once at config load; rendering a request is a walk over literal,
//! column and secret parts with no parsing. Does not: read files after load, or log values.

use crate::config::Secret;

/// Rows of a CSV file with a header row. Rows are used in order and cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Dataset {
    /// Column names, in file order (or the one `column` the config selected).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row for the `n`-th request (0-based), cycling when there are more requests than rows.
    pub fn row(&self, n: u64) -> &[String] {
        &self.rows[(n % self.rows.len() as u64) as usize]
    }
}

/// A string with literal text, `{{column}}` placeholders and resolved secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// Index into the dataset row; `json` = escape as the inside of a JSON string.
    Column { index: usize, json: bool },
    Secret { secret: Secret, json: bool },
}

impl Template {
    /// Renders for the wire, with this row's values (ignored when the template has no columns).
    pub fn render(&self, row: Option<&[String]>, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Column { index, json } => {
                    let value = row.and_then(|r| r.get(*index)).map_or("", String::as_str);
                    push_value(out, value, *json);
                }
                Part::Secret { secret, json } => push_value(out, secret.expose(), *json),
            }
        }
    }

    pub fn render_to_string(&self, row: Option<&[String]>) -> String {
        let mut s = String::new();
        self.render(row, &mut s);
        s
    }

    /// Renders for humans (logs, result files, `check`): secrets as `<redacted>`, columns as
    /// `{{name}}`.
    pub fn redacted(&self, columns: &[String]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Column { index, .. } => {
                    let name = columns.get(*index).map_or("?", String::as_str);
                    out.push_str("{{");
                    out.push_str(name);
                    out.push_str("}}");
                }
                Part::Secret { .. } => out.push_str("<redacted>"),
            }
        }
        out
    }

    /// A template with no placeholders and no secrets.
    pub fn literal(text: impl Into<String>) -> Self {
        Template {
            parts: vec![Part::Literal(text.into())],
        }
    }

    /// True when any part is a secret (the header or URL must be shown redacted).
    pub fn has_secret(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Secret { .. }))
    }
}

/// Appends `value`, escaped as the inside of a JSON string when `json` is set.
fn push_value(out: &mut String, value: &str, json: bool) {
    if !json {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}
