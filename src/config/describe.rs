//! Human-readable views of a validated config: what `streamprobe check -c FILE` prints.
//!
//! Does not: print (it returns text), read the clock (the caller passes `now`), or show a secret
//! (URLs and headers go through `Template::redacted`).

use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write as _;

use super::model::{CacheBust, Config, Expect, Slo, Target, VerdictSettings};
use super::schedule::Overlap;
use super::tls::Tls;
use super::units::{format_duration, format_percentage, format_rate, format_size};

/// How many upcoming fire times `check` lists per scheduled target.
const NEXT_FIRES: usize = 3;

/// The `check` report: the server (web config included) and results settings, then per target
/// its URL (redacted), method, headers, protocol and extract, plan, timeouts, response size
/// limit, TLS, proxy, data source, SLOs, expectations, verdict settings, schedule with its overlap policy, and the
/// next fire times after `now`.
pub fn check_report(config: &Config, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let n = config.targets.len();
    let _ = writeln!(
        out,
        "{}: ok, {n} target{}",
        config.path.display(),
        if n == 1 { "" } else { "s" }
    );
    let server = &config.server;
    let _ = writeln!(
        out,
        "server    listen {}, up to {} requests in flight, admin api {}, {}",
        server.listen,
        server.max_in_flight,
        if server.enable_admin_api { "on" } else { "off" },
        match &server.web_config {
            Some(path) => format!("web config {}", path.display()),
            None => "no web config (plain HTTP, no auth)".to_owned(),
        }
    );
    let results = &config.results;
    let _ = writeln!(
        out,
        "results   {} (keep {} per target, max age {}{})",
        results.dir.display(),
        results.keep_per_target,
        format_duration(results.max_age),
        if results.include_text {
            ", with text"
        } else {
            ""
        }
    );
    for target in &config.targets {
        out.push('\n');
        describe_target(&mut out, target, now);
    }
    out
}

fn describe_target(out: &mut String, target: &Target, now: DateTime<Utc>) {
    let _ = writeln!(out, "{}", target.name);
    let _ = writeln!(out, "  url       {}", target.display_url());
    let _ = writeln!(out, "  method    {}", target.method);
    for header in &target.headers {
        let _ = writeln!(
            out,
            "  header    {}: {}",
            header.name,
            target.display_header_value(header)
        );
    }
    let _ = writeln!(out, "  protocol  {}", target.protocol);
    if let Some(extract) = &target.extract {
        let _ = writeln!(out, "  extract   {extract}");
    }
    if let Some(model) = &target.model {
        let _ = writeln!(out, "  model     {model}");
    }
    let _ = writeln!(out, "  plan      {}", plan(target));
    let _ = writeln!(
        out,
        "  timeouts  total {}, first token {}, idle {}",
        format_duration(target.timeout),
        format_duration(target.first_token_timeout),
        format_duration(target.idle_timeout)
    );
    let _ = writeln!(
        out,
        "  max size  {} per response",
        format_size(target.max_response_bytes)
    );
    if let Some(tls) = &target.tls {
        let _ = writeln!(out, "  tls       {}", describe_tls(tls));
    }
    if let Some(proxy) = &target.proxy {
        let _ = writeln!(out, "  proxy     {proxy}");
    }
    if let Some(data) = &target.data {
        let _ = writeln!(
            out,
            "  data      {} rows, columns: {}",
            data.len(),
            data.columns().join(", ")
        );
    }
    if let Some(slo) = describe_slo(&target.slo) {
        let _ = writeln!(out, "  slo       {slo}");
    }
    if let Some(expect) = describe_expect(&target.expect) {
        let _ = writeln!(out, "  expect    {expect}");
    }
    if let Some(diagnose) = describe_diagnostics(target) {
        let _ = writeln!(out, "  diagnose  {diagnose}");
    }
    let _ = writeln!(out, "  verdict   {}", describe_verdict(&target.verdict));
    match &target.schedule {
        None => {
            let _ = writeln!(out, "  schedule  none (run only)");
        }
        Some(schedule) => {
            let _ = writeln!(
                out,
                "  schedule  {}{}, {}",
                schedule,
                if target.run_on_start {
                    ", and once at start"
                } else {
                    ""
                },
                match target.overlap {
                    Overlap::Skip => "overlap skip",
                    Overlap::Queue => "overlap queue",
                }
            );
            let fires: Vec<String> = schedule
                .next_fires(now, NEXT_FIRES)
                .iter()
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .collect();
            let _ = writeln!(out, "  next      {}", fires.join(", "));
        }
    }
}

/// `100 requests, 10 in flight` (closed loop) or `100 requests at 2/s, up to 10 in flight`.
fn plan(target: &Target) -> String {
    let mut plan = match target.rate {
        None => format!(
            "{} requests, {} in flight",
            target.total_requests, target.concurrency
        ),
        Some(rate) => format!(
            "{} requests at {}, up to {} in flight",
            target.total_requests,
            format_rate(rate),
            target.concurrency
        ),
    };
    if target.warmup_requests > 0 {
        let _ = write!(plan, ", after {} warmup", target.warmup_requests);
    }
    plan
}

/// `ttft 2s, tpot 80ms, duration 1m`: the objectives that are set, `None` without any.
fn describe_slo(slo: &Slo) -> Option<String> {
    let parts: Vec<String> = [
        ("ttft", slo.ttft),
        ("tpot", slo.tpot),
        ("duration", slo.duration),
    ]
    .into_iter()
    .filter_map(|(name, d)| d.map(|d| format!("{name} {}", format_duration(d))))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `ttft and tpot p90, last 1h vs the 7d before, min change 5%, min 30 samples`.
fn describe_verdict(v: &VerdictSettings) -> String {
    format!(
        "ttft and tpot {}, last {} vs the {} before, min change {}, min {} samples (serve)",
        v.statistic.as_str(),
        format_duration(v.recent),
        format_duration(v.baseline),
        format_percentage(v.min_change),
        v.min_samples
    )
}

/// `cache bust prefix, capture headers openai-processing-ms`, `None` when both are off.
fn describe_diagnostics(target: &Target) -> Option<String> {
    let mut parts = Vec::new();
    if target.cache_bust != CacheBust::Off {
        parts.push(format!("cache bust {}", target.cache_bust.as_str()));
    }
    if !target.capture_headers.is_empty() {
        parts.push(format!(
            "capture headers {}",
            target.capture_headers.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `at least 1 output token, text contains "sea"`, `None` without expectations.
fn describe_expect(expect: &Expect) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(n) = expect.min_output_tokens {
        parts.push(format!(
            "at least {n} output token{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(text) = &expect.contains {
        parts.push(format!("text contains {text:?}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `ca /etc/ca.pem, client cert /etc/client.pem, server name api.internal`; skipped
/// verification comes first and in capitals, so nobody misses it.
fn describe_tls(tls: &Tls) -> String {
    let mut parts = Vec::new();
    if tls.insecure_skip_verify {
        parts.push("INSECURE: server certificate not verified (insecure_skip_verify)".to_owned());
    }
    match &tls.ca {
        Some(ca) => parts.push(format!("ca {}", ca.path.display())),
        None if !tls.insecure_skip_verify => parts.push("built-in roots".to_owned()),
        None => {}
    }
    if let Some(client) = &tls.client_cert {
        parts.push(format!("client cert {}", client.cert.path.display()));
    }
    if let Some(name) = &tls.server_name {
        parts.push(format!(
            "server name {} (connecting to {})",
            name.name, name.connect_host
        ));
    }
    parts.join(", ")
}
