//! A simulated streaming server for the demo, tests and benchmarks.
