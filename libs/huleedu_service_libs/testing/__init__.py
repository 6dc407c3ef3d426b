"""Test helpers shared by the services' test suites (real PostgreSQL, real processes)."""
