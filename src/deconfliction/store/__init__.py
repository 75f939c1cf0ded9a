"""Storage: SQLAlchemy tables, engines and Alembic migrations (SQLite or PostgreSQL)."""
