//! Config strings and YAML bodies → `Template`s: text as is, `{{column}}` to a column of the
//! data source, `${...}` to a resolved secret; a YAML body to JSON text whose placeholders and
//! secrets land JSON-escaped. Used by the request (url, headers, body) and transport (proxy)
//! checks alike.
//!
//! Does not: decide where placeholders are allowed (the callers do), or put a secret value in a
//! message.

use std::path::Path;

use crate::config::error::{Problem, Warnings, problem, suggest};
use crate::config::raw::{Number, Value};
use crate::config::secret::{self, Env, Secret};
use crate::config::template::{Piece, Template, TemplateBuilder, scan};
use crate::dataset::Dataset;

type Result<T> = std::result::Result<T, Problem>;

/// The value `check` compiles in for a secret it cannot resolve: plain letters, so a URL or
/// proxy holding it still parses and everything else about the field is still checked.
const STAND_IN: &str = "unresolved";

/// What compiling a string needs besides the string: where `${file:...}` paths are relative to
/// (the config file's directory), where `${VAR}` is read from, and what an unresolvable secret
/// means.
#[derive(Clone, Copy)]
pub(super) struct Compiler<'a> {
    pub(super) base_dir: &'a Path,
    pub(super) env: &'a Env,
    pub(super) secrets: Secrets<'a>,
    /// The field path of the body string that starts with the cache-bust nonce
    /// (`cache_bust: prefix`), as `json` spells paths.
    pub(super) nonce_at: Option<&'a str>,
}

/// What a secret that cannot be resolved here means.
#[derive(Clone, Copy)]
pub(super) enum Secrets<'a> {
    /// An error: `serve` and `run` send requests, they need every value.
    Required,
    /// `check`, which may run where the daemon's secrets are not: a warning (saying how to
    /// provide it) and a stand-in value, so the rest of the file is still validated.
    Deferred {
        config_file: &'a Path,
        warnings: &'a Warnings,
    },
}

impl Compiler<'_> {
    pub(super) fn string_template(
        &self,
        text: &str,
        path: &str,
        data: Option<&Dataset>,
        json: bool,
    ) -> Result<Template> {
        let mut builder = TemplateBuilder::new();
        self.string_parts(text, path, data, json, &mut builder)?;
        Ok(builder.build())
    }

    /// Compiles one config string: text as is (JSON-escaped when `json`), `{{column}}` to a
    /// column part, `${...}` to a resolved secret.
    fn string_parts(
        &self,
        text: &str,
        path: &str,
        data: Option<&Dataset>,
        json: bool,
        builder: &mut TemplateBuilder,
    ) -> Result<()> {
        for piece in scan(text) {
            match piece {
                Piece::Text(t) if json => builder.literal(&json_string_inside(t)),
                Piece::Text(t) => builder.literal(t),
                Piece::Placeholder(name) => builder.column(column_index(name, path, data)?, json),
                Piece::Reference(reference) => {
                    let secret = match secret::resolve(reference, self.base_dir, self.env) {
                        Ok(secret) => secret,
                        Err(e) => {
                            let Secrets::Deferred {
                                config_file,
                                warnings,
                            } = self.secrets
                            else {
                                return Err(problem(path, e.to_string()));
                            };
                            let advice = e
                                .unavailable_here(config_file)
                                .ok_or_else(|| problem(path, e.to_string()))?;
                            warnings.push(problem(path, advice));
                            Secret::new(STAND_IN.to_owned())
                        }
                    };
                    builder.secret(secret, json);
                }
            }
        }
        Ok(())
    }

    /// Compiles a YAML body into JSON text; string values may hold placeholders and secrets.
    pub(super) fn json(
        &self,
        value: &Value,
        path: &str,
        data: Option<&Dataset>,
        out: &mut TemplateBuilder,
    ) -> Result<()> {
        match value {
            Value::Null => out.literal("null"),
            Value::Bool(b) => out.literal(if *b { "true" } else { "false" }),
            Value::Number(n) => out.literal(&json_number(n, path)?.to_string()),
            Value::String(s) => {
                out.literal("\"");
                if self.nonce_at == Some(path) {
                    out.nonce();
                }
                self.string_parts(s, path, data, true, out)?;
                out.literal("\"");
            }
            Value::Sequence(items) => {
                out.literal("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.literal(",");
                    }
                    self.json(item, &format!("{path}[{i}]"), data, out)?;
                }
                out.literal("]");
            }
            Value::Mapping(map) => {
                out.literal("{");
                for (i, (key, item)) in map.iter().enumerate() {
                    let key = match key {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => scalar_text(key),
                        _ => {
                            return Err(problem(
                                path,
                                "JSON object keys must be text; quote the key",
                            ));
                        }
                    };
                    if i > 0 {
                        out.literal(",");
                    }
                    out.literal(&serde_json::Value::String(key.clone()).to_string());
                    out.literal(":");
                    self.json(item, &format!("{path}.{key}"), data, out)?;
                }
                out.literal("}");
            }
            Value::Tagged(tagged) => {
                return Err(problem(
                    path,
                    format!(
                        "YAML tags are not supported in a body, got {}; remove the tag",
                        tagged.tag
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A YAML number as JSON: integers exactly, floats when finite.
fn json_number(n: &Number, path: &str) -> Result<serde_json::Number> {
    if let Some(i) = n.as_i64() {
        Ok(serde_json::Number::from(i))
    } else if let Some(u) = n.as_u64() {
        Ok(serde_json::Number::from(u))
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .ok_or_else(|| {
                problem(
                    path,
                    format!("JSON has no such number, got {n}; use a finite number"),
                )
            })
    }
}

fn column_index(name: &str, path: &str, data: Option<&Dataset>) -> Result<usize> {
    let Some(data) = data else {
        return Err(problem(
            path,
            format!(
                "placeholder {{{{{name}}}}} needs a data source; add data_source: {{type: csv, file: prompts.csv}} with a column named {name:?}"
            ),
        ));
    };
    data.column_index(name).ok_or_else(|| {
        let columns = data.columns();
        let hint = match suggest(name, columns.iter().map(String::as_str)) {
            Some(near) => format!("did you mean {{{{{near}}}}}? "),
            None => String::new(),
        };
        problem(
            path,
            format!(
                "unknown placeholder {{{{{name}}}}}; {hint}the data source has columns: {}",
                columns.join(", ")
            ),
        )
    })
}

/// `text` escaped as the inside of a JSON string literal.
fn json_string_inside(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// A scalar as the text it was written as; other values as a phrase for messages.
pub(super) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(_) => "a tagged value".to_owned(),
    }
}
