//! The live progress display of one burst, a consumer of `BurstEvent`s on stderr: an indicatif
//! bar (done/total, elapsed, req/s, live TTFT p50, errors) on a terminal, or one plain line per
//! finished request in the old script's shape (`-v`, or stderr is not a terminal), or nothing.
//!
//! Does not: measure anything, or write to stdout (the report goes there).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::probe::{BurstEvent, BurstSink, Outcome, RequestRecord};
use crate::stats::percentile;

/// `openai [=====>     ] 12/100 00:00:07 p50 ttft 0.234s | 0 errors | 1.71 req/s`.
const BAR_TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A redrawn bar: only sensible on a terminal.
    Bar,
    /// One line per finished request: logs, pipes, `-v`.
    Lines,
    Off,
}

impl ProgressMode {
    /// `--no-progress` wins; `-v` or a non-terminal stderr gives lines; otherwise a bar.
    pub fn detect(verbose: bool, no_progress: bool) -> ProgressMode {
        ProgressMode::choose(verbose, no_progress, std::io::stderr().is_terminal())
    }

    fn choose(verbose: bool, no_progress: bool, stderr_is_terminal: bool) -> ProgressMode {
        if no_progress {
            ProgressMode::Off
        } else if verbose || !stderr_is_terminal {
            ProgressMode::Lines
        } else {
            ProgressMode::Bar
        }
    }
}

/// Progress of one burst: the sink `run` subscribes to the engine.
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    errors: u64,
    /// TTFT of successful requests so far, seconds, kept sorted for the live median.
    ttft_sorted: Vec<f64>,
    /// Digits of request numbers in lines (at least 3, as the old script's `[001]`).
    index_width: usize,
    started: Instant,
}

impl Progress {
    pub fn new(mode: ProgressMode, target: &str, total: u64) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            // The template is a constant; if indicatif ever rejected it, a plain bar is better
            // than no progress.
            let style = ProgressStyle::with_template(BAR_TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::new(total)
                .with_style(style)
                .with_prefix(target.to_string());
            // Keeps elapsed moving while every request is still waiting for its first token.
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            mode,
            bar,
            total,
            done: 0,
            errors: 0,
            ttft_sorted: Vec::new(),
            index_width: (total.max(1).ilog10() as usize + 1).max(3),
            started: Instant::now(),
        }
    }

    /// `p50 ttft 0.234s | 2 errors | 3.90 req/s`.
    fn status(&self) -> String {
        let p50 = if self.ttft_sorted.is_empty() {
            "-".to_string()
        } else {
            format!("{:.3}s", percentile(&self.ttft_sorted, 0.5))
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        let rps = if elapsed > 0.0 {
            self.done as f64 / elapsed
        } else {
            0.0
        };
        let errors = match self.errors {
            1 => "1 error".to_string(),
            n => format!("{n} errors"),
        };
        format!("p50 ttft {p50} | {errors} | {rps:.2} req/s")
    }
}

impl BurstSink for Progress {
    fn observe(&mut self, ev: &BurstEvent) {
        let BurstEvent::RequestDone(record) = ev else {
            return;
        };
        self.done += 1;
        match record.ttft {
            Some(t) if record.outcome.is_success() => {
                let t = t.as_secs_f64();
                let at = self.ttft_sorted.partition_point(|x| *x < t);
                self.ttft_sorted.insert(at, t);
            }
            _ => {}
        }
        if record.outcome.is_failure() {
            self.errors += 1;
        }
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Lines => {
                let line = request_line(record, self.index_width);
                // Progress is best effort: a closed stderr must not fail the burst.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(self.done.min(self.total));
                    bar.set_message(self.status());
                }
            }
        }
    }

    /// Leaves the final bar on screen (lines and off need nothing).
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.set_message(self.status());
            bar.finish();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A burst that ends by error or cancellation must not leave a ticking bar behind.
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

/// One finished request, as the old script printed it, with the body chunks (which the old
/// script called tokens) added at the end:
/// `[001] ttft 0.234s | 2.456s | 45 tokens | 18.32 tok/s | 12.34 KB | 47 chunks`; a request
/// cut short shows what it measured, `[003] INTERRUPTED ttft 0.234s | 1.200s so far | 5 tokens
/// | 1.20 KB | 6 chunks`; a failure `[002] FAILED timeout_idle: <error> | 30.001s`. Error text
/// is flattened to one line.
pub fn request_line(record: &RequestRecord, index_width: usize) -> String {
    let id = format!("[{:0width$}]", record.index, width = index_width);
    let duration = record.duration.as_secs_f64();
    let ttft = record
        .ttft
        .map_or("-".to_string(), |t| format!("{:.3}s", t.as_secs_f64()));
    let kb = record.bytes as f64 / 1024.0;
    if record.outcome.is_success() {
        format!(
            "{id} ttft {ttft} | {duration:.3}s | {} tokens | {:.2} tok/s | {kb:.2} KB | {} chunks",
            record.output_tokens,
            record.tokens_per_second(),
            record.chunks,
        )
    } else if record.outcome == Outcome::Interrupted {
        format!(
            "{id} INTERRUPTED ttft {ttft} | {duration:.3}s so far | {} tokens | {kb:.2} KB | {} chunks",
            record.output_tokens, record.chunks,
        )
    } else {
        let error = record
            .error
            .as_deref()
            .map(|e| {
                let flat: String = e
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                format!(": {}", flat.trim())
            })
            .unwrap_or_default();
        format!("{id} FAILED {}{error} | {duration:.3}s", record.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::TokenSource;

    fn record() -> RequestRecord {
        RequestRecord {
            index: 1,
            outcome: Outcome::Success,
            status: Some(200),
            error: None,
            start_offset: Duration::ZERO,
            client_wait: Duration::ZERO,
            time_to_headers: Some(Duration::from_millis(101)),
            ttft: Some(Duration::from_millis(234)),
            first_visible_token: Some(Duration::from_millis(234)),
            duration: Duration::from_millis(2456),
            output_tokens: 45,
            token_source: TokenSource::Usage,
            token_events: 45,
            chunks: 47,
            bytes: 12_636,
            itl: vec![],
            tpot: None,
            text: None,
            connection: None,
            phases: Default::default(),
            retried: false,
            ratelimit: Default::default(),
            provider_request_id: None,
            captured_headers: Vec::new(),
            response_model: None,
            system_fingerprint: None,
            input_tokens: None,
            cached_input_tokens: None,
            reasoning_tokens: None,
            usage_mismatch: false,
        }
    }

    #[test]
    fn success_line_has_the_old_shape() {
        assert_eq!(
            request_line(&record(), 3),
            "[001] ttft 0.234s | 2.456s | 45 tokens | 18.32 tok/s | 12.34 KB | 47 chunks"
        );
    }

    #[test]
    fn interrupted_line_shows_what_was_measured() {
        let cut = RequestRecord {
            index: 3,
            outcome: Outcome::Interrupted,
            error: Some("cancelled before the stream ended".into()),
            duration: Duration::from_millis(1200),
            output_tokens: 5,
            chunks: 6,
            bytes: 1229,
            ..record()
        };
        assert_eq!(
            request_line(&cut, 3),
            "[003] INTERRUPTED ttft 0.234s | 1.200s so far | 5 tokens | 1.20 KB | 6 chunks"
        );
        let mut p = Progress::new(ProgressMode::Off, "t", 3);
        p.observe(&BurstEvent::RequestDone(std::sync::Arc::new(cut)));
        assert_eq!((p.done, p.errors), (1, 0));
    }

    #[test]
    fn failure_line_names_the_outcome_and_flattens_the_error() {
        let failed = RequestRecord {
            index: 2,
            outcome: Outcome::TimeoutIdle,
            error: Some("no data for 30s\nafter 12 chunks".into()),
            ttft: None,
            duration: Duration::from_millis(30_001),
            ..record()
        };
        assert_eq!(
            request_line(&failed, 4),
            "[0002] FAILED timeout_idle: no data for 30s after 12 chunks | 30.001s"
        );
        let bare = RequestRecord {
            error: None,
            ..failed
        };
        assert_eq!(
            request_line(&bare, 3),
            "[002] FAILED timeout_idle | 30.001s"
        );
    }

    #[test]
    fn bar_follows_done_requests() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
        let mut p = Progress::new(ProgressMode::Bar, "t", 2);
        p.observe(&BurstEvent::RequestStarted { index: 1 });
        p.observe(&BurstEvent::RequestDone(std::sync::Arc::new(record())));
        let bar = p.bar.clone().unwrap();
        assert_eq!((bar.position(), bar.length()), (1, Some(2)));
        assert!(bar.message().starts_with("p50 ttft 0.234s | 0 errors"));
        p.finish();
        assert!(bar.is_finished());
    }

    #[test]
    fn mode_selection() {
        assert_eq!(ProgressMode::choose(false, false, true), ProgressMode::Bar);
        assert_eq!(ProgressMode::choose(true, false, true), ProgressMode::Lines);
        assert_eq!(
            ProgressMode::choose(false, false, false),
            ProgressMode::Lines
        );
        assert_eq!(ProgressMode::choose(true, true, true), ProgressMode::Off);
        assert_eq!(ProgressMode::choose(false, true, false), ProgressMode::Off);
    }

    #[test]
    fn live_median_and_error_count_follow_events() {
        let mut p = Progress::new(ProgressMode::Off, "t", 1000);
        assert_eq!(p.index_width, 4);
        for (i, ms) in [(1, 300), (2, 100), (3, 200)] {
            let ev = BurstEvent::RequestDone(std::sync::Arc::new(RequestRecord {
                index: i,
                ttft: Some(Duration::from_millis(ms)),
                ..record()
            }));
            p.observe(&ev);
        }
        p.observe(&BurstEvent::RequestStarted { index: 4 });
        p.observe(&BurstEvent::RequestDone(std::sync::Arc::new(
            RequestRecord {
                index: 4,
                outcome: Outcome::Http5xx,
                ttft: None,
                ..record()
            },
        )));
        assert_eq!(p.done, 4);
        assert_eq!(p.ttft_sorted, [0.1, 0.2, 0.3]);
        assert!(
            p.status().starts_with("p50 ttft 0.200s | 1 error | "),
            "{}",
            p.status()
        );
        p.finish();
        assert_eq!(Progress::new(ProgressMode::Off, "t", 5).index_width, 3);
    }
}
