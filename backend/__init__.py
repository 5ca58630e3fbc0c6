"""fleetcare backend: ingest, storage, customers, models serving, care engine and API."""
