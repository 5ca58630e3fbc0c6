"""Storage: the schema, migrations, and the TimescaleDB / plain PostgreSQL dialects.

Public surface::

    from backend.storage.migrator import apply_migrations, migration_status
    from backend.storage.connect import connect, check_database
    from backend.storage.dialect import dialect_for, Dialect
    from backend.storage.database import Database   # dialect + connection factory
"""
