"""Authentication at the gateway: bearer JWTs in dev and jwt mode, the identity
a backend receives (the SchedulerService double records it), the JWKS file and
URL key sources, 401s with RFC 6750 challenges, policy denials as 403
problems, and ``/.well-known/jwks.json`` from a signer double — all through the
real gateway application and real gRPC servers on port 0."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from google.protobuf import any_pb2
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from maestro.cli.main import app as cli
from maestro.policy.v1 import decision_pb2
from maestro.runtime.context import LOCAL_ADMIN, Principal
from maestro.runtime.errors import PermissionDeniedError
from maestro.runtime.server import GrpcServer, ServiceSpec, start_grpc_server
from maestro.runtime.settings import ServiceSettings
from maestro.scheduler.v1 import scheduler_service_pb2 as scheduler_pb
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as scheduler_pb_grpc
from maestro.services.gateway.app import create_app
from maestro.services.gateway.auth import RemoteJwks
from maestro.services.gateway.backends import BackendMonitor
from maestro.services.gateway.clients import Clients
from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.devkey import DEV_KEY_FILE
from maestro.services.gateway.identity import ClaimError, principal_from_claims
from maestro.services.gateway.problems import http_problem
from maestro.signer.v1 import signer_service_pb2 as signer_pb
from maestro.signer.v1 import signer_service_pb2_grpc as signer_pb_grpc
from tests.conftest import free_port
from tests.unit.scheduler_double import SERVICE_NAME, FakeScheduler, start_fake_scheduler

pytestmark = pytest.mark.timeout(30)

PROBLEM = "application/problem+json"
ISSUER = "https://idp.example"
AUDIENCE = "maestro-api"
ROUTE = "/api/executions/done"  # GetExecution on the double


# --- keys and tokens --------------------------------------------------------------


@dataclass
class SigningKey:
    """A private key and its public JWK (with ``kid`` and ``alg``)."""

    private: Any
    jwk: dict[str, Any]

    @property
    def alg(self) -> str:
        return str(self.jwk["alg"])

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={**header})


def ed25519_key(kid: str) -> SigningKey:
    private = ed25519.Ed25519PrivateKey.generate()
    jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(private, {**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})


def es256_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(private, {**jwk, "kid": kid, "alg": "ES256"})


def rs256_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(private, {**jwk, "kid": kid, "alg": "RS256"})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ana",
        "iat": now,
        "exp": now + 300,
        "maestro/tenant": "acme",
        "roles": ["author", "reviewer"],
        "clearance": "CONFIDENTIAL",
        "purpose": "audit",
        "legalBasis": "contract",
        "reason_for_access": "ticket-7",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


ANA = Principal(
    tenant="acme",
    subject="ana",
    roles=("author", "reviewer"),
    clearance="CONFIDENTIAL",
    purpose="audit",
    legal_basis="contract",
    reason_for_access="ticket-7",
)


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **extra}


# --- the gateway in front of the scheduler double -----------------------------------


@dataclass
class Gateway:
    http: httpx.AsyncClient
    fake: FakeScheduler
    registry: CollectorRegistry

    def auth_count(self, result: str) -> float:
        value = self.registry.get_sample_value("maestro_gateway_auth_total", {"result": result})
        return value or 0.0

    def received(self) -> Principal:
        """The identity the scheduler saw on the last GetExecution."""
        return self.fake.last("GetExecution").principal


@pytest.fixture
async def scheduler() -> AsyncIterator[tuple[FakeScheduler, GrpcServer]]:
    fake, server = await start_fake_scheduler()
    try:
        yield fake, server
    finally:
        await server.stop(0)


def gateway_settings(scheduler: GrpcServer, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        f"{svc}_address": f"127.0.0.1:{free_port()}"
        for svc in ("compiler", "registry", "executor", "policy", "signer")
    }
    values.update(scheduler_address=f"127.0.0.1:{scheduler.port}", client_timeout_seconds=2)
    values.update(overrides)
    return GatewaySettings(**values)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(
    scheduler: tuple[FakeScheduler, GrpcServer],
) -> AsyncIterator[GatewayFactory]:
    """Builds gateways (settings overridden by keyword) in front of the double."""
    fake, server = scheduler
    opened: list[tuple[httpx.AsyncClient, Clients, BackendMonitor]] = []

    async def make(**overrides: Any) -> Gateway:
        settings = gateway_settings(server, **overrides)
        clients = Clients.open(settings, TracerProvider())
        backends = BackendMonitor({}, timeout=1, interval=60)
        registry = CollectorRegistry()
        app = create_app(settings, backends, registry, clients, TracerProvider())
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        http = httpx.AsyncClient(transport=transport, base_url="http://gw")
        opened.append((http, clients, backends))
        return Gateway(http, fake, registry)

    try:
        yield make
    finally:
        for http, clients, backends in opened:
            await http.aclose()
            await clients.close()
            await backends.stop()


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps({"keys": [key.jwk for key in keys]}))
    return path


@pytest.fixture
def idp_key() -> SigningKey:
    return ed25519_key("idp-1")


@pytest.fixture
async def jwt_gateway(make_gateway: GatewayFactory, idp_key: SigningKey, tmp_path: Path) -> Gateway:
    """A jwt-mode gateway trusting ``idp_key`` through a JWKS file."""
    return await make_gateway(
        auth_mode="jwt",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_keys_file=write_jwks(tmp_path / "jwks.json", idp_key),
    )


def assert_unauthenticated(response: httpx.Response, *, error: bool = True) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["reason"], body["code"], body["status"]) == (
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        401,
    )
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="maestro"')
    assert ('error="invalid_token"' in challenge) is error


# --- dev mode ---------------------------------------------------------------------


async def test_dev_mode_without_a_token_is_the_default_admin(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gateway = await make_gateway(data_dir=tmp_path)
    response = await gateway.http.get(ROUTE)
    assert response.status_code == 200, response.text
    assert gateway.received() == LOCAL_ADMIN
    assert gateway.auth_count("dev_default") == 1
    assert not (tmp_path / DEV_KEY_FILE).exists()  # the gateway never writes the key


async def test_a_dev_token_from_the_cli_is_accepted_and_its_identity_forwarded(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "dev-token",
            "--data-dir", str(tmp_path),
            "--tenant", "acme",
            "--subject", "ana",
            "--roles", "author,reviewer",
            "--clearance", "CONFIDENTIAL",
            "--purpose", "audit",
            "--legal-basis", "contract",
            "--reason", "ticket-7",
            "--ttl", "10m",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    key_file = tmp_path / DEV_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert 590 <= jwt.decode(token, options={"verify_signature": False})["exp"] - time.time() <= 600

    gateway = await make_gateway(data_dir=tmp_path)
    # Identity headers next to a token are not believed.
    response = await gateway.http.get(
        ROUTE, headers=bearer(token, **{"x-maestro-tenant": "evil", "x-maestro-roles": "admin"})
    )
    assert response.status_code == 200, response.text
    assert gateway.received() == ANA
    assert gateway.auth_count("ok") == 1

    # The key is made once: a second token is signed by the same key.
    again = CliRunner().invoke(cli, ["dev-token", "--data-dir", str(tmp_path)])
    assert again.exit_code == 0
    response = await gateway.http.get(ROUTE, headers=bearer(again.stdout.strip()))
    assert response.status_code == 200
    assert gateway.received() == Principal(
        tenant="default", subject="local-admin", roles=("admin",)
    )


async def test_dev_mode_refuses_a_token_not_signed_by_the_dev_key(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    CliRunner().invoke(cli, ["dev-token", "--data-dir", str(tmp_path)])
    gateway = await make_gateway(data_dir=tmp_path)
    stranger = ed25519_key("stranger")
    token = stranger.sign(claims(iss="maestro-dev", aud="maestro"))
    assert_unauthenticated(await gateway.http.get(ROUTE, headers=bearer(token)))
    garbage = await gateway.http.get(ROUTE, headers=bearer("not-a-jwt"))
    assert_unauthenticated(garbage)
    basic = await gateway.http.get(ROUTE, headers={"authorization": "Basic YTpi"})
    assert_unauthenticated(basic)
    assert gateway.auth_count("invalid") == 3
    assert gateway.fake.requests("GetExecution") == []


def test_dev_token_rejects_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["--ttl", "soon"], ["--tenant", ""], ["--subject", "jos\u00e9"]):
        result = runner.invoke(cli, ["dev-token", "--data-dir", str(tmp_path), *args])
        assert result.exit_code == 2, args


# --- jwt mode, keys from a file ------------------------------------------------------


async def test_jwt_mode_accepts_a_valid_token_and_ignores_identity_headers(
    jwt_gateway: Gateway, idp_key: SigningKey
) -> None:
    token = idp_key.sign(claims(), kid="idp-1")
    spoofed = {"x-maestro-tenant": "evil", "x-maestro-subject": "root", "x-maestro-roles": "admin"}
    response = await jwt_gateway.http.get(ROUTE, headers=bearer(token, **spoofed))
    assert response.status_code == 200, response.text
    assert jwt_gateway.received() == ANA
    assert jwt_gateway.auth_count("ok") == 1


async def test_jwt_mode_without_a_token_is_401_without_an_error_code(
    jwt_gateway: Gateway,
) -> None:
    response = await jwt_gateway.http.get(ROUTE, headers={"x-maestro-tenant": "acme"})
    assert_unauthenticated(response, error=False)
    assert response.json()["requestId"] == response.headers["x-request-id"]
    assert jwt_gateway.auth_count("missing") == 1
    assert jwt_gateway.fake.requests("GetExecution") == []


async def test_an_expired_token_is_401_invalid_token(
    jwt_gateway: Gateway, idp_key: SigningKey
) -> None:
    past = int(time.time()) - 3600
    token = idp_key.sign(claims(iat=past - 60, exp=past), kid="idp-1")
    response = await jwt_gateway.http.get(ROUTE, headers=bearer(token))
    assert_unauthenticated(response)
    assert 'error_description="the token has expired"' in response.headers["www-authenticate"]
    assert jwt_gateway.auth_count("expired") == 1


async def test_clock_skew_within_the_leeway_is_tolerated(
    jwt_gateway: Gateway, idp_key: SigningKey
) -> None:
    token = idp_key.sign(claims(exp=int(time.time()) - 5), kid="idp-1")  # leeway is 30 s
    assert (await jwt_gateway.http.get(ROUTE, headers=bearer(token))).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"aud": "another-api"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"maestro/tenant": None}, "tenant"),
        ({"sub": None}, "sub"),
        ({"exp": None}, "exp"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ],
)
async def test_tokens_with_wrong_claims_are_401(
    jwt_gateway: Gateway, idp_key: SigningKey, overrides: dict[str, Any], description: str
) -> None:
    token = idp_key.sign(claims(**overrides), kid="idp-1")
    response = await jwt_gateway.http.get(ROUTE, headers=bearer(token))
    assert_unauthenticated(response)
    assert description in response.json()["detail"]
    assert jwt_gateway.auth_count("invalid") == 1


async def test_a_wrong_signature_is_401(jwt_gateway: Gateway) -> None:
    forger = ed25519_key("idp-1")  # same kid, other key
    response = await jwt_gateway.http.get(ROUTE, headers=bearer(forger.sign(claims(), kid="idp-1")))
    assert_unauthenticated(response)
    assert "signature" in response.json()["detail"]


async def test_unaccepted_algorithms_are_401(jwt_gateway: Gateway, idp_key: SigningKey) -> None:
    hmac = jwt.encode(
        claims(),
        "a-shared-secret-of-thirty-two-bytes!",
        algorithm="HS256",
        headers={"kid": "idp-1"},
    )
    none = jwt.encode(claims(), None, algorithm="none", headers={"kid": "idp-1"})
    for token in (hmac, none):
        assert_unauthenticated(await jwt_gateway.http.get(ROUTE, headers=bearer(token)))


@pytest.mark.parametrize("make_key", [es256_key, rs256_key])
async def test_es256_and_rs256_keys(
    make_gateway: GatewayFactory, tmp_path: Path, make_key: Any
) -> None:
    key = make_key("k-1")
    gateway = await make_gateway(
        auth_mode="jwt",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_keys_file=write_jwks(tmp_path / "jwks.json", ed25519_key("other"), key),
    )
    response = await gateway.http.get(ROUTE, headers=bearer(key.sign(claims(), kid="k-1")))
    assert response.status_code == 200, response.text
    assert gateway.received() == ANA


async def test_the_keys_file_is_reread_when_it_changes(
    jwt_gateway: Gateway, tmp_path: Path
) -> None:
    rotated = ed25519_key("idp-2")
    token = rotated.sign(claims(), kid="idp-2")
    assert_unauthenticated(await jwt_gateway.http.get(ROUTE, headers=bearer(token)))
    path = write_jwks(tmp_path / "jwks.json", rotated)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a distinct mtime
    assert (await jwt_gateway.http.get(ROUTE, headers=bearer(token))).status_code == 200


async def test_public_paths_need_no_token_and_the_document_says_bearer(
    jwt_gateway: Gateway,
) -> None:
    for path in ("/healthz", "/openapi.json", "/docs", "/metrics"):
        response = await jwt_gateway.http.get(path)
        assert response.status_code == 200, path
    schema = (await jwt_gateway.http.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    get_execution = schema["paths"]["/api/executions/{id}"]["get"]
    assert get_execution["security"] == [{"bearerAuth": []}]
    assert "401" in get_execution["responses"]
    assert "security" not in schema["paths"]["/healthz"]["get"]
    assert "security" not in schema["paths"]["/.well-known/jwks.json"]["get"]
    metrics = (await jwt_gateway.http.get("/metrics")).text
    assert 'maestro_gateway_auth_total{result="missing"} 0.0' in metrics
    assert (await jwt_gateway.http.get("/api/health")).status_code == 401


async def test_in_dev_mode_the_document_makes_the_token_optional(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gateway = await make_gateway(data_dir=tmp_path)
    schema = (await gateway.http.get("/openapi.json")).json()
    security = schema["paths"]["/api/executions/{id}"]["get"]["security"]
    assert security == [{"bearerAuth": []}, {}]


def test_jwt_mode_settings_must_name_an_issuer_and_keys() -> None:
    with pytest.raises(ValueError, match="jwt_issuer"):
        GatewaySettings(auth_mode="jwt", jwks_url="https://idp.example/jwks")
    with pytest.raises(ValueError, match="jwks_url"):
        GatewaySettings(auth_mode="jwt", jwt_issuer=ISSUER)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "gateway.internal"])
def test_dev_mode_is_refused_off_loopback(host: str) -> None:
    """Dev mode makes a token-less request an admin: only on loopback, or on
    a network someone explicitly declared closed."""
    with pytest.raises(ValueError, match="auth_mode dev"):
        GatewaySettings(host=host)
    assert GatewaySettings(host=host, dev_auth_on_network=True).auth_mode == "dev"
    jwt = GatewaySettings(
        host=host, auth_mode="jwt", jwt_issuer=ISSUER, jwks_url="https://idp.example/jwks"
    )
    assert jwt.auth_mode == "jwt"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_dev_mode_binds_loopback(host: str) -> None:
    assert GatewaySettings(host=host).auth_mode == "dev"


# --- claims -> principal ------------------------------------------------------------


def test_claim_spellings() -> None:
    principal = principal_from_claims(
        {
            "sub": "bob",
            "tenant": "plain",
            "maestro/tenant": "namespaced",
            "roles": "author reviewer,author",
            "legal_basis": "consent",
            "reasonForAccess": "INC-1",
        }
    )
    assert principal == Principal(
        tenant="namespaced",
        subject="bob",
        roles=("author", "reviewer"),
        legal_basis="consent",
        reason_for_access="INC-1",
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"sub": "bob"},  # no tenant
        {"sub": "bob", "tenant": "a\nb"},
        {"sub": "bob", "tenant": "t", "roles": ["a,b"]},
        {"sub": "bob", "tenant": "t", "roles": {"a": 1}},
        {"sub": "bob", "tenant": "t", "clearance": 3},
        {"sub": "b\u00f6b", "tenant": "t"},
    ],
)
def test_claims_that_cannot_travel_as_metadata_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ClaimError):
        principal_from_claims(bad)


# --- jwt mode, keys from a URL ------------------------------------------------------


class JwksServer:
    """A local HTTP server serving a JWKS document that the test can replace."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    try:
        yield server
    finally:
        server.close()


async def test_jwks_url_is_cached_and_refetched_for_an_unknown_kid(
    make_gateway: GatewayFactory, jwks_server: JwksServer
) -> None:
    first, second = ed25519_key("k-1"), es256_key("k-2")
    jwks_server.document = {"keys": [first.jwk]}
    gateway = await make_gateway(
        auth_mode="jwt",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwks_url=jwks_server.url,
        jwks_min_refresh_seconds=0,
    )
    for _ in range(3):
        response = await gateway.http.get(ROUTE, headers=bearer(first.sign(claims(), kid="k-1")))
        assert response.status_code == 200, response.text
    assert jwks_server.requests == 1  # cached

    jwks_server.document = {"keys": [first.jwk, second.jwk]}  # the issuer rotates
    response = await gateway.http.get(ROUTE, headers=bearer(second.sign(claims(), kid="k-2")))
    assert response.status_code == 200, response.text
    assert jwks_server.requests == 2

    unknown = ed25519_key("k-3").sign(claims(), kid="k-3")
    assert_unauthenticated(await gateway.http.get(ROUTE, headers=bearer(unknown)))
    assert jwks_server.requests == 3


async def test_unknown_kid_refetches_are_rate_limited(jwks_server: JwksServer) -> None:
    key = ed25519_key("k-1")
    jwks_server.document = {"keys": [key.jwk]}
    now = [100.0]
    source = RemoteJwks(
        jwks_server.url,
        ("EdDSA",),
        cache_seconds=300,
        min_refresh_seconds=10,
        timeout=2,
        clock=lambda: now[0],
    )
    assert await source.key("k-1") is not None
    assert await source.key("nope") is None
    assert await source.key("nope") is None
    assert source.fetches == 1  # within min_refresh_seconds of the last fetch
    now[0] += 11
    assert await source.key("nope") is None
    assert source.fetches == 2
    now[0] += 400  # past the cache lifetime: refetched even for a known kid
    assert await source.key("k-1") is not None
    assert source.fetches == 3


async def test_an_unreachable_jwks_url_is_503_not_401(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(
        auth_mode="jwt",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json",
    )
    token = ed25519_key("k-1").sign(claims(), kid="k-1")
    response = await gateway.http.get(ROUTE, headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.json()["reason"] == "DEPENDENCY_UNAVAILABLE"


# --- policy denials -----------------------------------------------------------------

REASONS = [
    {"code": "ROLE_REQUIRED", "message": "needs role publisher", "rule": "maestro.deny"},
    {"code": "CLEARANCE_TOO_LOW", "message": "needs RESTRICTED"},
]
APPEAL = {"path": "https://access.example/request", "grantableByRoles": ["tenant-admin"]}


class DenyingScheduler(FakeScheduler):
    """The double, except that GetExecution is denied by policy."""

    async def GetExecution(self, request: Any, ctx: Any) -> scheduler_pb.GetExecutionResponse:
        self._record("GetExecution", request)
        raise PermissionDeniedError(
            "policy denied executions.get",
            metadata={
                "decision_id": "01J9ZK3T8Q6N2V4X5Y7Z8A9B0C",
                "reasons": json.dumps(REASONS),
                "appeal": json.dumps(APPEAL),
                "action": "executions.get",
            },
        )


async def test_a_policy_denial_is_403_with_reasons_decision_and_appeal(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    fake = DenyingScheduler()
    server = await start_grpc_server(
        ServiceSpec(
            name="scheduler",
            servicers=[(scheduler_pb_grpc.add_SchedulerServiceServicer_to_server, fake)],
            service_names=[SERVICE_NAME],
        ),
        ServiceSettings(port=0, metrics_port=None, grace_seconds=0),
    )
    try:
        gateway = await make_gateway(
            data_dir=tmp_path, scheduler_address=f"127.0.0.1:{server.port}"
        )
        response = await gateway.http.get(ROUTE)
    finally:
        await server.stop(0)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["reason"], body["code"], body["status"]) == (
        "POLICY_DENIED",
        "PERMISSION_DENIED",
        403,
    )
    assert body["decisionId"] == "01J9ZK3T8Q6N2V4X5Y7Z8A9B0C"
    assert body["reasons"] == [
        {"code": "ROLE_REQUIRED", "message": "needs role publisher"},
        {"code": "CLEARANCE_TOO_LOW", "message": "needs RESTRICTED"},
    ]
    assert body["appeal"] == APPEAL
    assert body["metadata"] == {"action": "executions.get"}


def test_denial_members_are_left_out_when_missing_or_malformed() -> None:
    bare = PermissionDeniedError("denied")
    _, body = http_problem(bare)
    assert {"reasons", "decisionId", "appeal", "metadata"}.isdisjoint(body)

    broken = PermissionDeniedError(
        "denied", metadata={"decision_id": "d-1", "reasons": "{not json", "appeal": "[]"}
    )
    status, body = http_problem(broken)
    assert status == 403
    assert body["decisionId"] == "d-1"
    assert "reasons" not in body and "appeal" not in body
    assert body["metadata"] == {"reasons": "{not json", "appeal": "[]"}


def test_a_packed_decision_fills_missing_members() -> None:
    error = PermissionDeniedError("denied", metadata={"decision_id": "d-2"})
    packed = decision_pb2.Decision(
        name="decisions/d-2",
        reasons=[decision_pb2.Reason(code="TENANT_MISMATCH", message="other tenant")],
        appeal=decision_pb2.Appeal(instructions="ask your admin"),
    )
    detail = any_pb2.Any()
    detail.Pack(packed)
    error.raw_details = (detail,)  # type: ignore[attr-defined]
    _, body = http_problem(error)
    assert body["decisionId"] == "d-2"
    assert body["reasons"] == [{"code": "TENANT_MISMATCH", "message": "other tenant"}]
    assert body["appeal"] == {"instructions": "ask your admin"}


# --- /.well-known/jwks.json ---------------------------------------------------------

SIGNER_JWKS = {
    "keys": [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "kid": "kid-active",
            "alg": "EdDSA",
            "use": "sig",
        }
    ]
}


class FakeSigner(signer_pb_grpc.SignerServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls = 0

    async def ListPublicKeys(self, request: Any, ctx: Any) -> signer_pb.ListPublicKeysResponse:
        self.calls += 1
        return signer_pb.ListPublicKeysResponse(jwks_json=json.dumps(SIGNER_JWKS))


async def start_signer(servicer: Any) -> GrpcServer:
    return await start_grpc_server(
        ServiceSpec(
            name="signer",
            servicers=[(signer_pb_grpc.add_SignerServiceServicer_to_server, servicer)],
            service_names=[signer_pb.DESCRIPTOR.services_by_name["SignerService"].full_name],
        ),
        ServiceSettings(port=0, metrics_port=None, grace_seconds=0),
    )


async def test_well_known_jwks_is_the_signers_public_keys(
    make_gateway: GatewayFactory, tmp_path: Path, idp_key: SigningKey
) -> None:
    fake = FakeSigner()
    server = await start_signer(fake)
    try:
        gateway = await make_gateway(
            auth_mode="jwt",  # public: no token needed
            jwt_issuer=ISSUER,
            jwt_keys_file=write_jwks(tmp_path / "jwks.json", idp_key),
            signer_address=f"127.0.0.1:{server.port}",
        )
        response = await gateway.http.get("/.well-known/jwks.json")
    finally:
        await server.stop(0)
    assert response.status_code == 200, response.text
    assert response.json() == SIGNER_JWKS
    assert fake.calls == 1
    assert "max-age" in response.headers["cache-control"]


async def test_well_known_jwks_is_503_when_the_signer_cannot_answer(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    unimplemented = await start_signer(signer_pb_grpc.SignerServiceServicer())
    try:
        gateway = await make_gateway(
            data_dir=tmp_path, signer_address=f"127.0.0.1:{unimplemented.port}"
        )
        response = await gateway.http.get("/.well-known/jwks.json")
    finally:
        await unimplemented.stop(0)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["reason"] == "DEPENDENCY_UNAVAILABLE"

    down = await make_gateway(data_dir=tmp_path)  # nothing listens at the signer address
    response = await down.http.get("/.well-known/jwks.json")
    assert response.status_code == 503
    assert response.json()["reason"] == "DEPENDENCY_UNAVAILABLE"
