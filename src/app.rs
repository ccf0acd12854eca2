//! Composition roots: `run_once`, `check`, `mock`, `serve`, `demo`. The only place adapters meet.
