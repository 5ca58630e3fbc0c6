"""Failure prediction for the simulated fleet's own device types (pumps, compressors)."""
