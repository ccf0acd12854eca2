//! Data sources: rows of a CSV file with a header row, decoded from any WHATWG encoding (or a
//! UTF-8/UTF-16 byte order mark), used in order and cycling. A leaf: it imports nothing from the
//! crate, so `config` can build on it.
//!
//! Does not: compile or render `{{column}}` templates (`config/template.rs`), read files after
//! config load, or log row values (rows are prompts, not diagnostics).

use std::path::Path;

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

/// An io error as a lowercase phrase without the OS's capitalisation. Lives in this leaf because
/// `DatasetError::Read` needs it and `dataset` imports nothing from the crate; config's messages
/// about unreadable files use it too.
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
