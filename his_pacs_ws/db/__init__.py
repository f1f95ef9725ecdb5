"""Storage: SQLAlchemy 2 models, engine and unit of work, embedded PostgreSQL, migrations."""
