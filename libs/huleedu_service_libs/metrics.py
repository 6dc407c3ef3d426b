"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class HttpMetrics:
    registry: CollectorRegistry
    requests_total: Counter
    request_duration_seconds: Histogram

    @classmethod
    def create(cls, service_name: str, registry: CollectorRegistry | None = None) -> HttpMetrics:
        registry = registry or CollectorRegistry()
        requests_total = Counter(
            "http_requests_total",
            "HTTP requests handled, by route template, method and status.",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        duration = Histogram(
            "http_request_duration_seconds",
            "Time spent handling HTTP requests, by route template and method.",
            ["service", "method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        return cls(registry=registry, requests_total=requests_total, request_duration_seconds=duration)
