"""Ingest benchmarks: raw COPY, a tutorial pipeline, and fleetcare ingest, side by side."""
