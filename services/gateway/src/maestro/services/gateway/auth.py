"""Authentication of REST callers: bearer JWTs verified against trusted keys.

``jwt`` mode: every request outside :data:`PUBLIC_PATHS` needs
``Authorization: Bearer <JWT>``, verified (PyJWT) against the keys of
``jwt_keys_file`` (a local JWKS, re-read when it changes) and/or ``jwks_url``
(fetched over HTTP(S), cached, refetched for an unknown ``kid`` at most once per
``jwks_min_refresh_seconds``), with the configured issuer, audience, algorithms
and clock-skew leeway. ``dev`` mode: a request without a token is the local
admin (``identity.principal_from_headers``), one with a token must carry a valid
token signed by the dev key in the data dir (``devkey``).

A request that fails gets 401 ``UNAUTHENTICATED`` with an RFC 6750 challenge in
``WWW-Authenticate``; every outcome is counted in
``maestro_gateway_auth_total{result}``.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
from jwt import PyJWK
from prometheus_client import CollectorRegistry, Counter

from maestro.runtime.context import Principal
from maestro.runtime.errors import MaestroError, UnauthenticatedError, UnavailableError
from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.devkey import (
    DEV_ALGORITHM,
    DEV_ISSUER,
    dev_key_from_pem,
    dev_key_path,
    public_jwk,
)
from maestro.services.gateway.identity import (
    ClaimError,
    principal_from_claims,
    principal_from_headers,
)

log = logging.getLogger("maestro.gateway.auth")

PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/.well-known/jwks.json"}
)
"""Paths served to anyone, token or not (a token there is not even looked at)."""
_PUBLIC_PREFIXES = ("/docs/",)  # Swagger UI's static assets
REALM = "maestro"
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
_MAX_JWKS_BYTES = 1024 * 1024


def is_public(path: str) -> bool:
    """True for the paths that need no authentication."""
    return path in PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES)


class AuthResult(enum.StrEnum):
    """Outcome of authenticating one request (the metric's ``result`` label)."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"
    DEV_DEFAULT = "dev_default"


class AuthenticationError(UnauthenticatedError):
    """No valid token (401 ``UNAUTHENTICATED``); ``result`` says why."""

    def __init__(self, message: str, result: AuthResult) -> None:
        super().__init__(message)
        self.result = result


def www_authenticate(error: MaestroError) -> str:
    """The RFC 6750 challenge of a 401: without an error code when the request
    had no credentials (section 3.1), else ``error="invalid_token"`` and a
    description."""
    if getattr(error, "result", None) == AuthResult.MISSING:
        return f'Bearer realm="{REALM}"'
    description = "".join(c for c in error.message if c not in '"\\' and " " <= c <= "~")
    return f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'


class AuthMetrics:
    """``maestro_gateway_auth_total{result}``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter(
            "maestro_gateway_auth_total",
            "Requests authenticated, by result: ok (valid token), missing (no token in jwt "
            "mode), invalid, expired, dev_default (dev mode, no token: the local admin).",
            ("result",),
            registry=registry,
        )
        for result in AuthResult:
            self.total.labels(result.value)

    def count(self, result: AuthResult) -> None:
        self.total.labels(result.value).inc()


# --- verification keys -------------------------------------------------------------


def parse_jwks(document: Any, algorithms: Collection[str], source: str) -> list[PyJWK]:
    """The usable signature keys of a JWKS document: keys of other algorithms,
    encryption keys and malformed members are skipped (and logged).

    Raises:
        ValueError: ``document`` is not a JWKS (an object with a ``keys`` list).
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{source} is not a JWKS document (an object with a keys list)")
    keys = []
    for member in document["keys"]:
        if not isinstance(member, dict) or member.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(member)
        except jwt.PyJWTError as exc:
            log.warning("skipping a key of %s: %s", source, exc)
            continue
        if key.algorithm_name in algorithms:
            keys.append(key)
    return keys


def select_key(keys: Sequence[PyJWK], kid: str | None) -> PyJWK | None:
    """The key named ``kid``; without a ``kid``, the only key if there is one."""
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)


class KeySource(Protocol):
    """Where verification keys come from."""

    async def key(self, kid: str | None) -> PyJWK | None:
        """The trusted key for a token's ``kid``, or None."""
        ...


class WatchedKeyFile:
    """Keys read from a local file, re-read whenever the file changes (a
    rotation needs no restart). A rewrite that does not parse keeps the last
    good keys; a missing file means no keys."""

    def __init__(self, path: Path, parse: Callable[[bytes], list[PyJWK]]) -> None:
        self.path = path
        self._parse = parse
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[PyJWK] = []

    def load(self) -> list[PyJWK]:
        """The current keys (reading the file if it changed)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._keys = None, []
            return self._keys
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp != self._stamp:
            try:
                self._keys = self._parse(self.path.read_bytes())
            except (OSError, ValueError) as exc:
                log.error("cannot read keys from %s: %s", self.path, exc)
            self._stamp = stamp
        return self._keys

    async def key(self, kid: str | None) -> PyJWK | None:
        return select_key(self.load(), kid)


def jwks_file(path: Path, algorithms: Collection[str]) -> WatchedKeyFile:
    """A local JWKS file of trusted keys.

    Raises:
        ValueError: the file is missing or holds no usable key (checked now, so a
            misconfigured gateway fails at start-up).
    """

    def parse(data: bytes) -> list[PyJWK]:
        return parse_jwks(json.loads(data), algorithms, str(path))

    source = WatchedKeyFile(path, parse)
    if not path.is_file():
        raise ValueError(f"jwt_keys_file {path} does not exist")
    if not source.load():
        raise ValueError(f"jwt_keys_file {path} holds no usable {'/'.join(algorithms)} key")
    return source


def dev_key_file(data_dir: Path) -> WatchedKeyFile:
    """The public half of the dev signing key (``maestro dev-token`` creates it)."""

    def parse(data: bytes) -> list[PyJWK]:
        return [PyJWK(public_jwk(dev_key_from_pem(data).public_key()))]

    return WatchedKeyFile(dev_key_path(data_dir), parse)


class RemoteJwks:
    """An issuer's JWKS fetched over HTTP(S).

    Fetched on first use and again after ``cache_seconds``; a ``kid`` not in the
    cached set triggers a refetch (key rotation at the issuer), but fetches are at
    least ``min_refresh_seconds`` apart whatever causes them, and concurrent
    requests share one fetch. A failed fetch keeps the keys already known; with
    none known, requests get 503 rather than 401 (the token may be fine).
    """

    def __init__(
        self,
        url: str,
        algorithms: Collection[str],
        *,
        cache_seconds: float,
        min_refresh_seconds: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._algorithms = tuple(algorithms)
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._timeout = timeout
        self._clock = clock
        self._keys: list[PyJWK] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._failed = False
        self._generation = 0
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Fetch attempts so far (for tests and debugging)."""

    def _due(self, unknown_kid: bool) -> bool:
        now = self._clock()
        if self._attempted_at is not None and now - self._attempted_at < self._min_refresh_seconds:
            return False
        expired = self._fetched_at is None or now - self._fetched_at >= self._cache_seconds
        return expired or unknown_kid

    async def _refresh(self) -> None:
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return  # another request fetched while this one waited
            self._generation += 1
            self._attempted_at = self._clock()
            self.fetches += 1
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                self._failed = True
                log.warning("cannot fetch the JWKS at %s: %s", self.url, exc)
                return
            self._fetched_at, self._failed = self._clock(), False

    async def _fetch(self) -> list[PyJWK]:
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
            response = await http.get(self.url, headers={"accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > _MAX_JWKS_BYTES:
            raise ValueError(f"the JWKS is larger than {_MAX_JWKS_BYTES} bytes")
        return parse_jwks(response.json(), self._algorithms, self.url)

    async def key(self, kid: str | None) -> PyJWK | None:
        if self._due(unknown_kid=False):
            await self._refresh()
        found = select_key(self._keys, kid)
        if found is None and self._due(unknown_kid=True):
            await self._refresh()
            found = select_key(self._keys, kid)
        if found is None and not self._keys and self._failed:
            raise UnavailableError("the token issuer's keys cannot be fetched; retry later")
        return found


# --- the authenticator -------------------------------------------------------------


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` value.

    Raises:
        AuthenticationError: another scheme, or no token.
    """
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "the Authorization header is not a bearer token", AuthResult.INVALID
        )
    return token.strip()


class Authenticator:
    """Turns a request's ``Authorization`` header into a principal (see the
    module docstring)."""

    def __init__(
        self,
        settings: GatewaySettings,
        metrics: AuthMetrics,
        *,
        sources: Sequence[KeySource] | None = None,
    ) -> None:
        self.mode = settings.auth_mode
        self._settings = settings
        self._metrics = metrics
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        if self.mode == "dev":
            self._issuer = DEV_ISSUER
            self._algorithms: tuple[str, ...] = (DEV_ALGORITHM,)
            default_sources: list[KeySource] = [dev_key_file(settings.data_dir)]
        else:
            self._issuer = settings.jwt_issuer
            self._algorithms = tuple(settings.jwt_algorithms)
            default_sources = []
            if settings.jwt_keys_file is not None:
                default_sources.append(jwks_file(settings.jwt_keys_file, self._algorithms))
            if settings.jwks_url:
                default_sources.append(
                    RemoteJwks(
                        settings.jwks_url,
                        self._algorithms,
                        cache_seconds=settings.jwks_cache_seconds,
                        min_refresh_seconds=settings.jwks_min_refresh_seconds,
                        timeout=settings.client_timeout_seconds,
                    )
                )
        self.sources: tuple[KeySource, ...] = tuple(
            sources if sources is not None else default_sources
        )

    async def authenticate(self, headers: Mapping[str, str]) -> tuple[Principal, bool]:
        """The caller's principal, and whether it comes from a verified token
        (False only for a dev-mode request without one).

        ``headers`` must be case-insensitive (as Starlette's are).

        Raises:
            AuthenticationError: no token (jwt mode) or an invalid one.
            UnavailableError: the issuer's keys cannot be fetched.
        """
        authorization = headers.get("authorization")
        if authorization is None:
            if self.mode == "dev":
                self._metrics.count(AuthResult.DEV_DEFAULT)
                principal = principal_from_headers(
                    headers,
                    default_tenant=self._settings.default_tenant,
                    default_subject=self._settings.default_subject,
                    default_roles=self._settings.default_roles,
                )
                return principal, False
            self._metrics.count(AuthResult.MISSING)
            raise AuthenticationError("a bearer token is required", AuthResult.MISSING)
        try:
            principal = await self.verify(bearer_token(authorization))
        except AuthenticationError as exc:
            self._metrics.count(exc.result)
            log.info("authentication failed (%s): %s", exc.result.value, exc.message)
            raise
        self._metrics.count(AuthResult.OK)
        return principal, True

    async def _key(self, kid: str | None) -> PyJWK | None:
        for source in self.sources:
            key = await source.key(kid)
            if key is not None:
                return key
        return None

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            AuthenticationError: the token is malformed, not signed by a trusted
                key with an accepted algorithm, expired or not yet valid, for
                another issuer or audience, or names no usable identity.
            UnavailableError: the issuer's keys cannot be fetched.
        """

        def invalid(message: str) -> AuthenticationError:
            return AuthenticationError(message, AuthResult.INVALID)

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise invalid("the bearer token is not a JWT") from exc
        if header.get("alg") not in self._algorithms:
            raise invalid("the token's signature algorithm is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise invalid("the token's kid is not a string")
        key = await self._key(kid)
        if key is None:
            raise invalid("the token is not signed by a trusted key")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(self._algorithms),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("the token has expired", AuthResult.EXPIRED) from exc
        except jwt.InvalidSignatureError as exc:
            raise invalid("the token's signature does not verify") from exc
        except jwt.InvalidAudienceError as exc:
            raise invalid("the token is not meant for this audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise invalid("the token's issuer is not trusted") from exc
        except jwt.ImmatureSignatureError as exc:
            raise invalid("the token is not valid yet") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise invalid(f"the token has no {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise invalid("the token is invalid") from exc
        try:
            return principal_from_claims(claims)
        except ClaimError as exc:
            raise invalid(str(exc)) from exc
