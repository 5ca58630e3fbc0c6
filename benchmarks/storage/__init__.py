"""Storage-layout benchmarks for telemetry tables."""
