"""The HTTP API: FastAPI app, API-key authentication, roles and scoping, routes."""
