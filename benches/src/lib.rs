//! Benchmarks live in `benches/`; see README.md there for the numbers.
