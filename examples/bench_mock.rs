//! Benchmark of the mock server itself: how late does it hand out first tokens when thousands of
//! streams run at once? Starts the mock in-process, opens N concurrent streams (OpenAI chat,
//! ttft 200ms, itl 10ms, 50 tokens) with a bare raw-TCP client, reads them all to the end, and
//! prints the mock's own first-token lateness against schedule (from its ground truth).
//!
//! `cargo run --release --example bench_mock -- 1000 5000` (raise `ulimit -n` first: each stream
//! costs two descriptors). Does not: measure the client's view; that is streamprobe's job.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use streamprobe::mock::{MockOptions, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY: &str = r#"{"model":"bench","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;

#[tokio::main]
async fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("arguments are stream counts, e.g. 1000 5000")
        })
        .collect();
    let counts = if counts.is_empty() {
        vec![1000, 5000]
    } else {
        counts
    };
    let options = MockOptions {
        ttft: Duration::from_millis(200),
        itl: Duration::from_millis(10),
        tokens: 50,
        truth_capacity: 1_000_000,
        ..MockOptions::default()
    };
    let server = MockServer::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("mock starts");
    println!(
        "{:>7} {:>9} {:>7} {:>9} {:>12} {:>12} {:>12} {:>9}",
        "streams",
        "completed",
        "failed",
        "wall",
        "late p50",
        "late p99",
        "late max",
        "max in-flight"
    );
    for n in counts {
        server.reset();
        let started = Instant::now();
        let addr = server.local_addr();
        let clients: Vec<_> = (0..n).map(|i| tokio::spawn(stream_once(addr, i))).collect();
        let mut failed = 0;
        for c in clients {
            if !matches!(c.await, Ok(Ok(()))) {
                failed += 1;
            }
        }
        let wall = started.elapsed();
        let mut lateness: Vec<Duration> = server
            .truths()
            .iter()
            .filter_map(|t| t.ttft_lateness)
            .collect();
        lateness.sort();
        let stats = server.stats();
        println!(
            "{n:>7} {:>9} {failed:>7} {:>8.2}s {:>12} {:>12} {:>12} {:>9}",
            lateness.len(),
            wall.as_secs_f64(),
            ms(quantile(&lateness, 0.50)),
            ms(quantile(&lateness, 0.99)),
            ms(lateness.last().copied()),
            stats.max_in_flight
        );
    }
    server.shutdown().await;
}

/// One request on its own connection, read to the terminating chunk.
async fn stream_once(addr: SocketAddr, i: usize) -> std::io::Result<()> {
    let mut stream = connect(addr).await?;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\nx-request-id: b{i}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await?;
    let mut buf = [0u8; 4096];
    // Only the tail matters: the body is done at the terminating chunk.
    let mut tail = Vec::with_capacity(16);
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        tail.extend_from_slice(&buf[n.saturating_sub(5)..n]);
        if tail.len() > 5 {
            tail.drain(..tail.len() - 5);
        }
        if tail == b"0\r\n\r\n" {
            return Ok(());
        }
    }
}

/// Connects, retrying briefly when a connect burst overflows the listen queue.
async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut attempt = 0;
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(_) if attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Nearest-rank quantile of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2}ms", d.as_secs_f64() * 1e3))
}
