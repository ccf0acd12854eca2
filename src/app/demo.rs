//! `streamprobe demo`: the mock and the daemon side by side, on the demo config, so that a
//! first look needs no API key and no configuration.
//!
//! Does not: configure targets (config/demo.yaml does) or differ from `serve` once started.

use std::time::Duration;

use crate::cli::DemoArgs;
use crate::config;
use crate::mock::{Fault, FaultSpec, MockOptions, MockServer};

use super::serve::{ServeOptions, serve};
use super::{AppError, Exit};

/// Where the demo's mock listens (config/demo.yaml points its targets here).
const DEMO_MOCK_PORT: u16 = 18080;

/// `streamprobe demo`: the mock (OpenAI protocol, realistic jitter, the occasional 429 and
/// stall) and the daemon on the demo config, until Ctrl-C.
pub async fn demo(args: &DemoArgs) -> Result<Exit, AppError> {
    let options = MockOptions {
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
    let mock = MockServer::start(addr, options)
        .await
        .map_err(|e| AppError::runtime(format!("cannot start the demo mock on {addr}"), e))?;
    let config = config::load(&args.config)?;
    let listen = config.server.listen;
    println!("streamprobe demo");
    println!(
        "  mock API:     http://{}/v1/chat/completions",
        mock.local_addr()
    );
    println!("  status page:  http://{listen}/");
    println!("  metrics:      http://{listen}/metrics");
    println!("  result files: {}", config.results.dir.display());
    println!("  bursts every 15 s; Ctrl-C to stop");
    let exit = serve(ServeOptions {
        config: args.config.clone(),
        shard: None,
    })
    .await;
    mock.shutdown().await;
    exit
}
