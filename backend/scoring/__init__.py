"""The scoring worker: failure predictions for devices with new telemetry."""
