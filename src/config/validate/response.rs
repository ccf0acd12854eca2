//! Response checks for a target: how to read the stream (`protocol`, `extract`) and what a good
//! response is (`slo`, `expect`).
//!
//! Does not: decode streams (`stream`) or judge results (`stats`): it only checks the settings.

use super::limits::positive_duration;
use crate::config::error::{Problem, problem, suggest};
use crate::config::model::{Expect, Extract, Protocol, Slo};
use crate::config::raw::{DurationValue, Sourced, TargetFields, join};

type Result<T> = std::result::Result<T, Problem>;

/// `protocol` when not set: detected per response from the URL path, content type and events.
const DEFAULT_PROTOCOL: Protocol = Protocol::Auto;

pub(super) fn protocol(f: &TargetFields) -> Result<Protocol> {
    match &f.protocol {
        Some(p) => parse_protocol(p),
        None => Ok(DEFAULT_PROTOCOL),
    }
}

fn parse_protocol(raw: &Sourced<String>) -> Result<Protocol> {
    Protocol::parse(raw.value.trim()).ok_or_else(|| {
        let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
        let hint = match suggest(&raw.value, names.iter().copied()) {
            Some(near) => format!("did you mean {near}? "),
            None => String::new(),
        };
        problem(
            &raw.path,
            format!(
                "unknown protocol, got {:?}; {hint}use one of {}",
                raw.value,
                names.join(", ")
            ),
        )
    })
}

/// `extract:`, which only a generic `sse`/`ndjson` protocol reads.
pub(super) fn extract(f: &TargetFields, protocol: Protocol) -> Result<Option<Extract>> {
    let Some(raw) = &f.extract else {
        return Ok(None);
    };
    if !matches!(protocol, Protocol::Sse | Protocol::Ndjson) {
        let at = f.protocol.as_ref().map_or("protocol", |p| p.path.as_str());
        return Err(problem(
            &raw.path,
            format!(
                "only applies to protocol sse or ndjson, got protocol {protocol} ({at}); set protocol: sse or ndjson, or remove extract"
            ),
        ));
    }
    let e = &raw.value;
    for (field, pointer) in [
        ("text", &e.text),
        ("reasoning", &e.reasoning),
        ("output_tokens", &e.output_tokens),
        ("done", &e.done),
        ("error", &e.error),
        ("model", &e.model),
        ("input_tokens", &e.input_tokens),
        ("cached_input_tokens", &e.cached_input_tokens),
    ] {
        if let Some(p) = pointer
            && !p.is_empty()
            && !p.starts_with('/')
        {
            return Err(problem(
                join(&raw.path, field),
                format!("not a JSON pointer, got {p:?}; pointers start with '/', e.g. /content"),
            ));
        }
    }
    Ok(Some(Extract {
        text: e.text.clone(),
        reasoning: e.reasoning.clone(),
        output_tokens: e.output_tokens.clone(),
        done: e.done.clone(),
        error: e.error.clone(),
        model: e.model.clone(),
        input_tokens: e.input_tokens.clone(),
        cached_input_tokens: e.cached_input_tokens.clone(),
    }))
}

/// A warning for a generic protocol without `extract`: valid, but it counts framing, not
/// tokens, which for a JSON API is rarely what was meant (llama.cpp's `/completion` read as
/// plain `sse` turns its empty prompt-progress event into the first token).
pub(super) fn generic_without_extract(
    f: &TargetFields,
    protocol: Protocol,
    extract: Option<&Extract>,
) -> Option<Problem> {
    let unit = match protocol {
        Protocol::Sse => "SSE event (its data: lines)",
        Protocol::Ndjson => "line",
        _ => return None,
    };
    if extract.is_some() {
        return None;
    }
    let at = f.protocol.as_ref().map_or("protocol", |p| p.path.as_str());
    Some(problem(
        at,
        format!(
            "{protocol} without extract counts every non-empty {unit} as one output token and keeps its raw data as the text; for JSON events name the fields with extract: {{text: /pointer, done: /pointer, ...}}, or use the API's own protocol (auto detects it from the URL and the first event)"
        ),
    ))
}

/// `slo:`, no objectives when not set.
pub(super) fn slo(f: &TargetFields) -> Result<Slo> {
    let Some(raw) = &f.slo else {
        return Ok(Slo::default());
    };
    let field = |name: &str, v: Option<DurationValue>| {
        positive_duration(
            v.map(|value| Sourced {
                value,
                path: join(&raw.path, name),
            })
            .as_ref(),
        )
    };
    Ok(Slo {
        ttft: field("ttft", raw.value.ttft)?,
        tpot: field("tpot", raw.value.tpot)?,
        duration: field("duration", raw.value.duration)?,
    })
}

/// `expect:`, no expectations when not set.
pub(super) fn expect(f: &TargetFields) -> Result<Expect> {
    let Some(raw) = &f.expect else {
        return Ok(Expect::default());
    };
    if raw.value.contains.as_deref() == Some("") {
        return Err(problem(
            join(&raw.path, "contains"),
            "is empty; give the text the stream must contain, or remove it",
        ));
    }
    Ok(Expect {
        contains: raw.value.contains.clone(),
        min_output_tokens: raw.value.min_output_tokens,
    })
}
