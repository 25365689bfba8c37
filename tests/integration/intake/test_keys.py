"""Keys an operator can run: `ladder keys` writes only digests and prints a new secret once;
intake reloads the file while serving, so a key rotated and the old one revoked under load
fails no request; an expired key is refused; a file that does not load changes nothing."""

import asyncio
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta

from cli.main import main as ladder
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from tests.apps import in_process
from tests.integration.intake.conftest import intake_env, ticket_body


def keys(path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            ladder(["keys", "--file", str(path), *argv])
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue().strip()
    return 0, out.getvalue().strip()


async def until(check, what: str) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def test_rotate_and_revoke_under_load_fail_no_request(tmp_path, platform, unique):
    path = tmp_path / "api-keys.json"
    status, old = keys(path, "add", "crm", "--actions", "create,respond")
    assert status == 0 and old.startswith("lk_")
    assert old not in path.read_text()  # only its digest is kept

    env = intake_env(INTAKE_API_KEYS="", INTAKE_API_KEYS_FILE=str(path))
    async with in_process(create_app, IntakeSettings, env) as (_, client):

        async def create(key: str, n: int) -> int:
            body = ticket_body(f"{unique}-{n}")
            response = await client.post("/v1/tickets", json=body, headers={"Authorization": f"Bearer {key}"})
            return response.status_code

        current, statuses, stop = [old], [], asyncio.Event()

        async def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                statuses.append(await create(current[0], worker * 100_000 + n))
                n += 1

        workers = [asyncio.create_task(load(i)) for i in range(4)]
        await asyncio.sleep(0.5)
        status, new = keys(path, "rotate", "crm")
        assert status == 0 and new.startswith("lk_") and new != old
        await until(lambda: probe(create, new, 201), "the new key works")
        current[0] = new  # the client switches; both keys work meanwhile
        await asyncio.sleep(0.5)
        assert keys(path, "revoke", "crm")[0] == 0
        await until(lambda: probe(create, old, 401), "the old key is refused")
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*workers)
    assert len(statuses) > 20
    assert set(statuses) == {201}, {s: statuses.count(s) for s in set(statuses)}
    listed = keys(path, "list")[1].splitlines()
    assert len(listed) == 1 and listed[0].startswith("crm\t") and new not in listed[0]


async def probe(create, key: str, expected: int) -> bool:
    return await create(key, -1) == expected


async def test_an_expired_key_is_refused_and_a_broken_file_changes_nothing(tmp_path, platform, unique):
    path = tmp_path / "api-keys.json"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    _, expired = keys(path, "add", "temp", "--actions", "create", "--expires", past)
    _, lasting = keys(path, "add", "crm", "--actions", "create")
    env = intake_env(INTAKE_API_KEYS="", INTAKE_API_KEYS_FILE=str(path))
    async with in_process(create_app, IntakeSettings, env) as (_, client):

        async def create(key: str) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            return (await client.post("/v1/tickets", json=ticket_body(unique), headers=headers)).status_code

        assert await create(expired) == 401
        assert await create(lasting) == 201
        path.write_text(json.dumps({"keys": []}))  # invalid: no keys at all
        await asyncio.sleep(1.5)  # a reload attempt or more
        assert await create(lasting) == 201  # the keys in force stay
