//! Templates: config strings compiled once at load into literal, `{{column}}`, secret and
//! cache-bust nonce parts, so rendering a request is a walk over parts with no parsing. `scan` splits a config string
//! into text, placeholders and `${...}` references; `validate/request.rs` drives the compilation
//! with it and `TemplateBuilder`.
//!
//! Does not: resolve secrets or look up columns (the builder is handed resolved parts), or show
//! a secret: `redacted` is the only human-facing rendering.

use super::secret::Secret;

/// A string with literal text, `{{column}}` placeholders and resolved secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// Index into the dataset row; `json` = escape as the inside of a JSON string.
    Column {
        index: usize,
        json: bool,
    },
    Secret {
        secret: Secret,
        json: bool,
    },
    /// `cache_bust: prefix`: the request's nonce and a space, at the start of the prompt.
    Nonce,
}

impl Template {
    /// Renders for the wire, with this row's values (ignored when the template has no columns).
    pub fn render(&self, row: Option<&[String]>, out: &mut String) {
        self.render_with_nonce(row, None, out);
    }

    /// As `render`, with the request's cache-bust nonce where the template has its place
    /// (nothing there without one). The nonce is plain ASCII (`<burst id>-<n>`): it needs no
    /// JSON escaping.
    pub fn render_with_nonce(&self, row: Option<&[String]>, nonce: Option<&str>, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Column { index, json } => {
                    let value = row.and_then(|r| r.get(*index)).map_or("", String::as_str);
                    push_value(out, value, *json);
                }
                Part::Secret { secret, json } => push_value(out, secret.expose(), *json),
                Part::Nonce => {
                    if let Some(nonce) = nonce {
                        push_value(out, nonce, true);
                        out.push(' ');
                    }
                }
            }
        }
    }

    pub fn render_to_string(&self, row: Option<&[String]>) -> String {
        let mut s = String::new();
        self.render(row, &mut s);
        s
    }

    /// True when the template has a place for a cache-bust nonce.
    pub fn has_nonce(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Nonce))
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
                Part::Nonce => out.push_str("<cache_bust> "),
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

    /// The values of the secrets in this template, for scrubbing them out of server text.
    /// Never log or store what this returns.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret { secret, .. } => Some(secret.expose()),
            _ => None,
        })
    }

    /// True when any part is a secret (the header or URL must be shown redacted).
    pub fn has_secret(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Secret { .. }))
    }
}

/// Builds a `Template` part by part; adjacent literals merge.
#[derive(Debug, Default)]
pub struct TemplateBuilder {
    parts: Vec<Part>,
}

impl TemplateBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn literal(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Part::Literal(last)) = self.parts.last_mut() {
            last.push_str(text);
        } else {
            self.parts.push(Part::Literal(text.to_owned()));
        }
    }

    /// The value of dataset column `index`; `json` = escape it as the inside of a JSON string.
    pub fn column(&mut self, index: usize, json: bool) {
        self.parts.push(Part::Column { index, json });
    }

    pub fn secret(&mut self, secret: Secret, json: bool) {
        self.parts.push(Part::Secret { secret, json });
    }

    /// The place of the cache-bust nonce (`cache_bust: prefix`).
    pub fn nonce(&mut self) {
        self.parts.push(Part::Nonce);
    }

    pub fn build(self) -> Template {
        Template { parts: self.parts }
    }
}

/// A piece of a template string, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// `{{ name }}`: the trimmed name.
    Placeholder(&'a str),
    /// `${...}`: what is inside the braces (`VAR`, `file:/path`, `credential:NAME`).
    Reference(&'a str),
}

/// Splits a config string into text, `{{column}}` placeholders and `${...}` references. `$${`
/// stands for a literal `${`. A `{{` or `${` without its closing braces on the same line is
/// plain text.
pub fn scan(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut literal_start = 0;
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        if rest.starts_with("$${") {
            // Keep the text before, drop one `$`, and let `${` continue as text.
            push_text(&mut pieces, &text[literal_start..pos]);
            literal_start = pos + 1;
            pos += 3;
            continue;
        }
        let (open, close) = if rest.starts_with("${") {
            ("${", "}")
        } else if rest.starts_with("{{") {
            ("{{", "}}")
        } else {
            pos += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let after_open = &rest[open.len()..];
        let end = after_open
            .find(close)
            .filter(|&end| !after_open[..end].contains(['\n', '{']));
        let Some(end) = end else {
            pos += open.len();
            continue;
        };
        push_text(&mut pieces, &text[literal_start..pos]);
        let inner = after_open[..end].trim();
        pieces.push(if open == "${" {
            Piece::Reference(inner)
        } else {
            Piece::Placeholder(inner)
        });
        pos += open.len() + end + close.len();
        literal_start = pos;
    }
    push_text(&mut pieces, &text[literal_start..]);
    pieces
}

fn push_text<'a>(pieces: &mut Vec<Piece<'a>>, text: &'a str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
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
