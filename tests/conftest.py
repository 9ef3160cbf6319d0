"""Shared fixtures. Peer rigs (Prometheus, moto, PostgreSQL) live in tests/integration."""
