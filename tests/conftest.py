"""Suite-wide configuration. Fixtures live in ``tests/fixtures/``, one module per area."""

pytest_plugins = [
    "tests.fixtures.fix_paths",
    "tests.fixtures.fix_db",
    "tests.fixtures.fix_mqtt",
    "tests.fixtures.fix_timescale",
]
