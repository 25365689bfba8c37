"""The committed OpenAPI document against the running intake, by a property-based API
tester (schemathesis): every request the document calls valid gets a documented 2xx or 409,
every request it calls invalid a documented 4xx, nothing a 5xx, every response matches its
documented schema; stateful sequences follow the document's links (create, then respond,
escalate, resolve... on that id)."""

import asyncio
import os
import re
import subprocess

from cli.contracts import DOCS
from tests.integration.intake.conftest import KEYS, intake_env_at_tail
from tests.processes import ROOT, ServiceProcess


async def test_the_server_does_what_the_document_says(platform, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text('[auth.openapi.HTTPBearer]\nbearer = "${LADDER_CONTRACT_KEY}"\n')
    # The default body limit (1 MiB) is above the largest valid body, so a 413 means invalid.
    env = await intake_env_at_tail(platform.kafka_bootstrap_servers, INTAKE_MAX_BODY_BYTES=str(1024 * 1024))
    with ServiceProcess("intake", env) as intake:
        result = await asyncio.to_thread(
            subprocess.run,
            [
                str(ROOT / ".venv" / "bin" / "st"),
                "--config-file",
                str(config),
                "run",
                str(DOCS / "openapi" / "intake.json"),
                "--url",
                intake.url,
                "--checks",
                "all",
                "--max-examples",
                "60",
                "--seed",
                "20261124",
                "--phases",
                "examples,coverage,fuzzing,stateful",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env={
                **os.environ,
                "LADDER_CONTRACT_KEY": KEYS["helpdesk"],
                "PYTHONPATH": str(ROOT),
                "SCHEMATHESIS_HOOKS": "tests.contract.schemathesis_hooks",
                "NO_COLOR": "1",
            },
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated and int(generated.group(1)) > 500 and generated.group(1) == generated.group(2), output[-3000:]
    print(f"schemathesis: {generated.group(0)}")
