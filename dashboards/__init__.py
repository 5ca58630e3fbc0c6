"""Grafana dashboards for fleetcare, as code."""
