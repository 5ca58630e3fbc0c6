"""Tests of the shared foundation: embedded services, the CLI shell, docker-compose."""
