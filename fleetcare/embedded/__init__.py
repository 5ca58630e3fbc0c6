"""Embedded services for a machine with nothing configured: PostgreSQL and an MQTT broker."""
