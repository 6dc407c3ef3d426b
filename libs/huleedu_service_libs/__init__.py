"""Shared building blocks for the HuleEdu services.

Everything a service needs to behave like its siblings: the error envelope and typed
errors, correlation ids, logging, bearer-token auth, a settings base, a pooled HTTP
client with retries, Prometheus metrics and the Quart wiring that ties them together.
"""
