//! A simulated streaming server for the demo, tests and benchmarks.
// TEMP-STUB
pub struct MockOptions;
impl MockOptions {
    pub fn from_cli(
        _p: &str,
        _t: &str,
        _i: &str,
        _n: u32,
        _j: f64,
        _u: bool,
        _f: &[String],
    ) -> Result<Self, String> {
        todo!()
    }
}
pub struct MockServer;
impl MockServer {
    pub async fn start(_a: std::net::SocketAddr, _o: MockOptions) -> std::io::Result<Self> {
        todo!()
    }
    pub fn local_addr(&self) -> std::net::SocketAddr {
        todo!()
    }
    pub async fn shutdown(self) {}
}
