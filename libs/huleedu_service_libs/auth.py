"""Bearer-token auth: with a token configured, every route needs it except the public paths
(health, metrics, the OpenAPI document)."""

from __future__ import annotations

import hmac

from huleedu_service_libs.errors import AuthenticationError

# Routes that orchestrators, scrapers and API tooling call without credentials.
PUBLIC_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})


def check_bearer_token(authorization_header: str | None, expected_token: str) -> None:
    """Raise ``AuthenticationError`` unless the header carries exactly the expected token."""
    if not authorization_header:
        raise AuthenticationError(
            "Missing Authorization header; send 'Authorization: Bearer <token>'.",
        )
    scheme, _, supplied = authorization_header.partition(" ")
    if scheme.lower() != "bearer" or not supplied.strip():
        raise AuthenticationError("Authorization header must have the form 'Bearer <token>'.")
    # Constant-time comparison so response timing does not leak the token.
    if not hmac.compare_digest(supplied.strip().encode(), expected_token.encode()):
        raise AuthenticationError("Invalid bearer token.")
