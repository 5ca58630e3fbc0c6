"""fleetcare: device telemetry to proactive customer care.

This package holds what the applications share: the command line, typed
configuration loading and the embedded services used when nothing is configured.
"""

__version__ = "0.1.0"
