"""Persistence only: the file store, the SQLAlchemy index and its migrations."""
