//! `streamprobe demo`: the mock and the daemon side by side, on the demo config, so that a
//! first look needs no API key, no configuration and no checkout: `config/demo.yaml` is built
//! into the binary, anchored at the working directory (results in `./streamprobe-results`).
//!
//! Does not: configure targets (config/demo.yaml does) or differ from `serve` once started.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::cli::DemoArgs;
use crate::config::{self, Config};
use crate::mock::{Fault, FaultSpec, MockOptions, MockServer};

use super::serve::{ServeOptions, serve};
use super::{AppError, Exit};

/// Where the demo's mock listens (config/demo.yaml points its targets here).
const DEMO_MOCK_PORT: u16 = 18080;

/// The demo config, built in so that `demo` works after `cargo install`, from any directory.
const BUILTIN_CONFIG: &str = include_str!("../../config/demo.yaml");
/// What names the built-in config in messages; its directory anchors its relative paths.
const BUILTIN_NAME: &str = "(built-in demo.yaml)";

/// `streamprobe demo`: the mock (OpenAI protocol, realistic jitter, the occasional 429 and
/// stall) and the daemon on the demo config, until Ctrl-C.
pub async fn demo(args: &DemoArgs) -> Result<Exit, AppError> {
    let options = match &args.config {
        Some(path) => ServeOptions {
            config: path.clone(),
            builtin: None,
            shard: None,
        },
        None => {
            let cwd = std::env::current_dir().map_err(|e| {
                AppError::runtime(
                    "cannot read the working directory for the demo's results",
                    e,
                )
            })?;
            ServeOptions {
                config: cwd.join(BUILTIN_NAME),
                builtin: Some(BUILTIN_CONFIG),
                shard: None,
            }
        }
    };
    // Loaded first (serve loads it again): a bad `-c FILE` fails before anything listens.
    let config = match options.builtin {
        Some(text) => config::load_str(text, &options.config)?,
        None => config::load(&options.config)?,
    };
    let mock_options = MockOptions {
        ttft: Duration::from_millis(200),
        itl: Duration::from_millis(20),
        tokens: 60,
        jitter: 0.25,
        faults: [(Fault::TooManyRequests, 0.03), (Fault::Stall, 0.02)]
            .into_iter()
            .filter_map(|(f, p)| FaultSpec::new(f, p))
            .collect(),
        ..MockOptions::default()
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], DEMO_MOCK_PORT));
    let mock = MockServer::start(addr, mock_options)
        .await
        .map_err(|e| AppError::runtime(format!("cannot start the demo mock on {addr}"), e))?;
    print!("{}", banner(&config, &mock.local_addr().to_string()));
    let exit = serve(options).await;
    mock.shutdown().await;
    exit
}

/// What the demo prints before it starts: where to look (first the page of the first target,
/// a picture), and when bursts fire (the config's own schedules, as `check` and the status
/// page state them).
fn banner(config: &Config, mock: &str) -> String {
    let listen = config.server.listen;
    let mut schedules: Vec<String> = config
        .targets
        .iter()
        .map(|t| {
            t.schedule
                .as_ref()
                .map_or_else(|| "on trigger only".to_owned(), ToString::to_string)
        })
        .collect();
    schedules.sort();
    schedules.dedup();
    // The first thing to open is a picture: a target's TTFT over time, its bursts one click
    // away. Target names are URL-safe ([A-Za-z0-9_.-]).
    let picture = config.targets.first().map_or_else(String::new, |t| {
        format!(
            "  look first:   http://{listen}/targets/{} (TTFT per burst; click a burst for \
             its waterfall)\n",
            t.name
        )
    });
    format!(
        "streamprobe demo\n{picture}  status page:  http://{listen}/\n  \
         mock API:     http://{mock}/v1/chat/completions\n  \
         metrics:      http://{listen}/metrics\n  \
         result files: {}\n  bursts {}; Ctrl-C to stop\n",
        clean(&config.results.dir).display(),
        schedules.join(", "),
    )
}

/// `dir` absolute and without `.` or `..` components, for display: `config/../results` reads
/// as `/home/me/repo/results`. Lexical (symlinks are not resolved), so only for the banner.
fn clean(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_config_loads_anywhere_and_the_banner_states_its_schedule() {
        let elsewhere = Path::new("/nowhere/at/all");
        let config = config::load_str(BUILTIN_CONFIG, &elsewhere.join(BUILTIN_NAME)).unwrap();
        assert_eq!(config.results.dir, elsewhere.join("streamprobe-results"));
        let text = banner(&config, "127.0.0.1:18080");
        assert!(
            text.contains("  result files: /nowhere/at/all/streamprobe-results\n"),
            "{text}"
        );
        assert!(
            text.contains("  bursts every 15s, jitter 2s; Ctrl-C to stop\n"),
            "{text}"
        );
        assert!(
            text.starts_with(
                "streamprobe demo\n  look first:   http://127.0.0.1:10061/targets/mock-fast "
            ),
            "{text}"
        );
    }

    #[test]
    fn displayed_paths_are_absolute_and_clean() {
        assert_eq!(
            clean(Path::new("/a/config/../results/./x")),
            Path::new("/a/results/x")
        );
        assert!(clean(Path::new("config/../r")).is_absolute());
        assert!(clean(Path::new("config/../r")).ends_with("r"));
    }
}
