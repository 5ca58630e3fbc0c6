"""Customers: one customer across CRM, ERP and service desk, their health, churn risk,
segments and privacy (export and erasure).

Domain code is synchronous and takes a ``psycopg.Connection``; the CLI (``fleetcare
accounts``), jobs and the API (``backend.api.routes.accounts``) share it.
"""
