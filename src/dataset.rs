//! Data sources and templating: CSV rows (any WHATWG encoding) and `{{column}}` / secret
//! substitution into URL, header and body templates.
//!
//! Templates are compiled once at config load (`config/validate.rs` drives the compilation with
//! `scan` and `TemplateBuilder`); rendering a request is a walk over literal, column and secret
//! parts with no parsing. Does not: read files after load, resolve secrets, or log values.

use std::path::Path;

use crate::config::Secret;

/// Why a CSV file could not become a `Dataset`. Messages name no file: the caller prefixes it.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read the file: {0}")]
    Read(String),
    #[error(
        "is not valid {encoding} text; set data_source.encoding to the file's encoding (e.g. gbk, big5, shift_jis)"
    )]
    Decode { encoding: String },
    #[error(
        "line {line}: row has {got} fields but the header has {expected}; quote values that contain commas"
    )]
    RowLength { line: u64, expected: u64, got: u64 },
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("has no header row; the first line must name the columns")]
    NoHeader,
    #[error("has a header row but no data rows; add at least one row")]
    NoRows,
    #[error("no such column, got {column:?}; the columns are: {available}")]
    NoColumn { column: String, available: String },
}

/// Rows of a CSV file with a header row. Rows are used in order and cycle.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Columns and row count only: rows can be many, and are prompts, not diagnostics.
impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("columns", &self.columns)
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl Dataset {
    /// Reads a CSV file with a header row. `encoding` applies unless the file starts with a
    /// UTF-8 or UTF-16 byte order mark; `column` keeps only that column.
    pub fn from_csv_file(
        path: &Path,
        encoding: &'static encoding_rs::Encoding,
        column: Option<&str>,
    ) -> Result<Dataset, DatasetError> {
        let bytes = std::fs::read(path).map_err(|e| DatasetError::Read(io_message(&e)))?;
        Dataset::from_csv_bytes(&bytes, encoding, column)
    }

    /// As `from_csv_file`, from the file's bytes.
    pub fn from_csv_bytes(
        bytes: &[u8],
        encoding: &'static encoding_rs::Encoding,
        column: Option<&str>,
    ) -> Result<Dataset, DatasetError> {
        let (encoding, bom_len) = encoding_rs::Encoding::for_bom(bytes).unwrap_or((encoding, 0));
        let text = encoding
            .decode_without_bom_handling_and_without_replacement(&bytes[bom_len..])
            .ok_or(DatasetError::Decode {
                encoding: encoding.name().to_ascii_lowercase(),
            })?;
        Dataset::from_csv_str(&text, column)
    }

    /// As `from_csv_file`, from decoded text.
    pub fn from_csv_str(text: &str, column: Option<&str>) -> Result<Dataset, DatasetError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(DatasetError::NoHeader);
        }
        let keep = match column {
            Some(name) => Some(header.iter().position(|h| h == name).ok_or_else(|| {
                DatasetError::NoColumn {
                    column: name.to_owned(),
                    available: header.join(", "),
                }
            })?),
            None => None,
        };
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            rows.push(match keep {
                Some(i) => vec![record.get(i).unwrap_or_default().to_owned()],
                None => record.iter().map(str::to_owned).collect(),
            });
        }
        if rows.is_empty() {
            return Err(DatasetError::NoRows);
        }
        let columns = match keep {
            Some(i) => vec![header[i].clone()],
            None => header,
        };
        Ok(Dataset { columns, rows })
    }

    /// The encoding for a `data_source.encoding` label: any WHATWG label, plus the Python
    /// spellings the old script's files may carry (`utf-8-sig`, `utf_8`, `cp936`).
    pub fn encoding_for_label(label: &str) -> Option<&'static encoding_rs::Encoding> {
        let label = label.trim();
        encoding_rs::Encoding::for_label(label.as_bytes()).or_else(|| {
            let python = label.to_ascii_lowercase().replace('_', "-");
            let python = python.strip_suffix("-sig").unwrap_or(&python);
            match python {
                "cp936" => Some(encoding_rs::GBK),
                other => encoding_rs::Encoding::for_label(other.as_bytes()),
            }
        })
    }

    /// The index of a column in each row.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

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
    Column {
        index: usize,
        json: bool,
    },
    Secret {
        secret: Secret,
        json: bool,
    },
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

fn csv_error(err: csv::Error) -> DatasetError {
    let line = err.position().map_or(0, csv::Position::line);
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => DatasetError::RowLength {
            line: pos.as_ref().map_or(line, csv::Position::line),
            expected: *expected_len,
            got: *len,
        },
        _ => DatasetError::Malformed {
            line,
            message: err.to_string(),
        },
    }
}

/// An io error as a lowercase phrase without the OS's capitalisation.
pub(crate) fn io_message(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => {
            let text = err.to_string();
            let mut chars = text.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_lowercase().collect::<String>() + chars.as_str()
            })
        }
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
