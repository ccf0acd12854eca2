//! The floor under streamprobe's client CPU: what reading the same streams costs without it.
//! Against a running `streamprobe mock`, opens N streams, C at a time, and reads each to its
//! end, then prints CPU seconds per 1,000 requests:
//!
//! * `reqwest`: a bare reqwest client (the same features streamprobe builds), reading chunks
//!   and dropping them: no decoding, timing or records. What the HTTP stack costs.
//! * `tcp`: a raw TCP client (one request written, bytes read until the server closes): what
//!   the kernel's receive path costs, with no HTTP stack at all.
//!
//! `taskset -c 0 cargo run --release --example bench_floor -- reqwest http://127.0.0.1:PORT 1000 4000`
//! with the mock pinned to another core (`scripts/bench-overhead.sh` runs streamprobe the same
//! way). Runs on one thread, as `run` does when pinned to one core.

use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BODY: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;

fn cpu(clock: ClockId) -> Duration {
    let t = clock_gettime(clock);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, url, c, n] = args.as_slice() else {
        eprintln!("usage: bench_floor reqwest|tcp URL CONCURRENCY REQUESTS");
        std::process::exit(2);
    };
    let (c, n): (usize, usize) = (c.parse().unwrap(), n.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("{}/v1/chat/completions", url.trim_end_matches('/'));
    let bytes = rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(c)
            .build()
            .unwrap();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..c {
            let (client, url, next, mode) =
                (client.clone(), url.clone(), next.clone(), mode.clone());
            workers.spawn(async move {
                let mut total = 0usize;
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    total += match mode.as_str() {
                        "reqwest" => via_reqwest(&client, &url).await,
                        _ => via_tcp(&url).await,
                    };
                }
                total
            });
            tokio::task::yield_now().await;
        }
        let mut bytes = 0;
        while let Some(done) = workers.join_next().await {
            bytes += done.unwrap();
        }
        bytes
    });
    let per_1k = |d: Duration| d.as_secs_f64() / n as f64 * 1000.0;
    println!(
        "{mode:>8} C={c} n={n}: CPU {:.3} s per 1,000 requests; {bytes} bytes read",
        per_1k(cpu(ClockId::ProcessCPUTime)),
    );
}

async fn via_reqwest(client: &reqwest::Client, url: &str) -> usize {
    let mut response = client
        .post(url)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .expect("the mock answers");
    let mut total = 0;
    while let Some(chunk) = response.chunk().await.expect("the stream ends cleanly") {
        total += chunk.len();
    }
    total
}

async fn via_tcp(url: &str) -> usize {
    let authority = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await.unwrap() {
            0 => return total,
            k => total += k,
        }
    }
}
