"""Simulator benchmarks: ``python -m benchmarks.firmware_sim.bench_sim``."""
