"""One PostgreSQL role per service (deploy/local/postgres.sh service-role): it owns its
schema and migrates it, and cannot read, write or create anything in another service's;
an existing role's password is never reset; the local cluster serves TLS from the local CA,
so `sslmode=require` and `verify-full` work. On the real server the suite uses
(DATABASE_URL, the admin role), which must be a local cluster the script manages."""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from services.router.adapters.store import MIGRATIONS as ROUTER_MIGRATIONS
from shared.db import connect_options, create_pool, migrate
from shared.service import DELIVERY_MIGRATIONS
from shared.settings import LadderSettings, load

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ROOT / "var" / "secrets"
ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://ladder:ladder@localhost:5432/ladder")


def service_role(name: str, schema: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "deploy/local/postgres.sh"), "service-role", name, schema],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": ADMIN_URL},
        check=False,
    )


def as_superuser(sql: str) -> None:
    port = str(urlsplit(ADMIN_URL).port or 5432)
    database = urlsplit(ADMIN_URL).path.strip("/")
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-p", port, "-d", database, "-c", sql],
        check=True,
        capture_output=True,
        cwd="/",
        timeout=60,
    )


class Service:
    def __init__(self, name: str) -> None:
        self.name, self.schema = name, f"{name}_s"
        self.role, self.password_file = f"ladder_{name}", SECRETS / f"postgres-{name}.password"
        result = service_role(self.name, self.schema)
        assert result.returncode == 0, (
            f"postgres.sh service-role needs the local cluster it manages (make test): {result.stderr}"
        )
        self.url = result.stdout.strip().splitlines()[-1]

    def settings(self, query: str = "") -> LadderSettings:
        """The service's settings as services.sh gives them: its role, the password in a file."""
        return load(LadderSettings, DATABASE_URL=self.url + query, DATABASE_PASSWORD_FILE=str(self.password_file))

    async def connect(self, query: str = "") -> asyncpg.Connection:
        url = self.settings(query).database_url
        return await asyncpg.connect(url, **connect_options(url))

    def remove(self) -> None:
        as_superuser(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        as_superuser(f'DROP ROLE IF EXISTS "{self.role}"')
        self.password_file.unlink(missing_ok=True)


@pytest.fixture
def two_services() -> Iterator[tuple[Service, Service]]:
    stem = f"t{uuid.uuid4().hex[:8]}"
    made: list[Service] = []
    try:
        made.append(Service(f"{stem}_router"))
        made.append(Service(f"{stem}_intake"))
        yield made[0], made[1]
    finally:
        for service in made:
            service.remove()


async def test_a_service_role_migrates_its_own_schema_and_cannot_touch_another(two_services):
    router, intake = two_services
    pool = await create_pool(router.settings().database_url, min_size=1, max_size=2)
    try:  # the service's real start-up: its migrations and the delivery kit's, as its own role
        applied = await migrate(pool, router.schema, ROUTER_MIGRATIONS)
        applied += await migrate(pool, router.schema, DELIVERY_MIGRATIONS, ledger="delivery_migrations")
        assert applied
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE TABLE {router.schema}.note (body text)")
            await conn.execute(f"INSERT INTO {router.schema}.note VALUES ('routed')")
            assert await conn.fetchval(f"SELECT body FROM {router.schema}.note") == "routed"
    finally:
        await pool.close()

    other = await intake.connect()
    try:
        for statement in (
            f"SELECT count(*) FROM {router.schema}.note",
            f"SELECT count(*) FROM {router.schema}.schema_migrations",
            f"INSERT INTO {router.schema}.note VALUES ('forged')",
            f"CREATE TABLE {router.schema}.planted (x int)",
            f'CREATE SCHEMA "{intake.name}_more"',
            "CREATE TABLE public.planted (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await other.execute(statement)
        await other.execute(f"CREATE TABLE {intake.schema}.own (x int)")  # its own schema: allowed
    finally:
        await other.close()

    admin = await asyncpg.connect(ADMIN_URL, **connect_options(ADMIN_URL))
    try:  # the admin role (tests, reset, CLI) reads every service's schema
        assert await admin.fetchval(f"SELECT count(*) FROM {router.schema}.note") == 1
    finally:
        await admin.close()


async def test_an_existing_roles_password_is_never_reset(two_services):
    router, _ = two_services
    password = router.password_file.read_text()
    router.password_file.write_text("not-the-password\n")
    result = service_role(router.name, router.schema)
    assert result.returncode != 0
    assert "the role exists and its password is never reset" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout
    router.password_file.write_text(password)
    conn = await router.connect()  # the role still logs in with its first password
    await conn.close()


@pytest.mark.parametrize("query", ["?sslmode=require", f"?sslmode=verify-full&sslrootcert={SECRETS / 'ca.crt'}"])
async def test_the_local_cluster_serves_tls_from_the_local_ca(two_services, query):
    router, _ = two_services
    conn = await router.connect(query)
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    finally:
        await conn.close()


async def test_verify_full_refuses_a_server_its_ca_did_not_sign(two_services):
    """`sslmode` is honoured, not just accepted: with the system's CAs (which do not know the
    local CA), verify-full refuses the local cluster's certificate."""
    router, _ = two_services
    with pytest.raises(ssl.SSLCertVerificationError):
        await router.connect("?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt")
