"""Tests of the storage layer (SQLite and PostgreSQL)."""
