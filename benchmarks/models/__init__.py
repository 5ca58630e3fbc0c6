"""Benchmarks of the failure models (C-MAPSS, AI4I, onnxruntime vs torch)."""
