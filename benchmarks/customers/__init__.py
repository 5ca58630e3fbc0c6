"""Customers benchmarks: identity resolution, data quality, health score, churn models."""
