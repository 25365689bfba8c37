"""`ladder keys add | rotate | revoke | list`: intake's API key file (INTAKE_API_KEYS_FILE).

The file holds only SHA-256 digests; a new key's secret is printed once, on stdout, and
kept nowhere. Intake reloads the file when it changes (no restart, no failed request).
Rotation: `rotate NAME` gives the client a second key (both work), the client switches to
it, then `revoke NAME` removes the older one. Writes are atomic (a new file renamed over the
old), so intake never reads half a file.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.intake.core.auth import MAX_KEYS_PER_CLIENT, ApiKey, KeyRingConfig, hash_key

HELP = "manage intake's API keys (hashes only; a new secret is printed once)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        type=Path,
        default=os.environ.get("INTAKE_API_KEYS_FILE"),
        help="the key file (default INTAKE_API_KEYS_FILE)",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    add = actions.add_parser("add", help="a new client and its key")
    add.add_argument("name")
    add.add_argument("--actions", required=True, help="comma-separated: create,respond,escalate,return,resolve,...")
    add.add_argument("--tickets", choices=["own", "all"], default="own", help="own (default) or every ticket")
    add.add_argument("--expires", type=datetime.fromisoformat, help="when the key stops working (ISO 8601 with zone)")
    add.add_argument("--rate", type=float, help="requests per second (token bucket refill)")
    add.add_argument("--burst", type=int, help="token bucket size")
    rotate = actions.add_parser("rotate", help="a second key for a client; both work until `revoke`")
    rotate.add_argument("name")
    rotate.add_argument("--expires", type=datetime.fromisoformat, help="when the new key stops working")
    revoke = actions.add_parser("revoke", help="remove a client's older key (or the one named by --key)")
    revoke.add_argument("name")
    revoke.add_argument("--key", help="the sha256 prefix of the key to remove (as `list` prints)")
    revoke.add_argument("--all", action="store_true", help="remove every key of the client")
    actions.add_parser("list", help="one line per key: client, digest prefix, actions, tickets, expiry, limits")


def run(args: argparse.Namespace) -> int:
    if args.file is None:
        print("no key file: pass --file or set INTAKE_API_KEYS_FILE", file=sys.stderr)
        return 2
    path: Path = args.file
    keys = _read(path) if path.exists() or args.action != "add" else []
    mine = [k for k in keys if k["name"] == getattr(args, "name", None)]
    secret = None
    if args.action == "list":
        for key in keys:
            limits = f"{key.get('rate_per_second') or '-'}/s burst {key.get('burst') or '-'}"
            print(
                f"{key['name']}\t{key['sha256'][:12]}\t{','.join(sorted(key['actions']))}\t"
                f"{key.get('tickets', 'own')}\t{key.get('expires_at') or 'never'}\t{limits}"
            )
        return 0
    if args.action == "add":
        if mine:
            print(f"client {args.name!r} exists: use rotate", file=sys.stderr)
            return 1
        secret = _secret()
        entry: dict[str, Any] = {"name": args.name, "sha256": hash_key(secret), "actions": args.actions.split(",")}
        entry.update(
            _optional(tickets=args.tickets, expires_at=args.expires, rate_per_second=args.rate, burst=args.burst)
        )
        keys.append(entry)
    elif args.action == "rotate":
        if not mine:
            print(f"no client {args.name!r}", file=sys.stderr)
            return 1
        if len(mine) >= MAX_KEYS_PER_CLIENT:
            print(f"client {args.name!r} has {len(mine)} keys: revoke the older one first", file=sys.stderr)
            return 1
        secret = _secret()
        entry = {k: v for k, v in mine[-1].items() if k != "expires_at"}
        entry.update({"sha256": hash_key(secret), **_optional(expires_at=args.expires)})
        keys.append(entry)
    else:  # revoke
        if args.key:
            gone = [k for k in mine if k["sha256"].startswith(args.key)]
        elif args.all:
            gone = mine
        elif len(mine) == MAX_KEYS_PER_CLIENT:
            gone = mine[:1]  # the older one: rotate appends
        else:
            print(f"client {args.name!r} has {len(mine)} key(s): name one with --key, or pass --all", file=sys.stderr)
            return 1
        if len(gone) != 1 and not args.all:
            print("--key must name exactly one key of that client", file=sys.stderr)
            return 1
        keys = [k for k in keys if k not in gone]
        print(f"revoked {len(gone)} key(s) of {args.name}", file=sys.stderr)
    try:
        if keys:
            KeyRingConfig(keys=[ApiKey.model_validate(k) for k in keys])
    except (ValidationError, ValueError) as error:
        print(f"refused: the file would be invalid: {error}", file=sys.stderr)
        return 1
    _write(path, keys)
    if secret is not None:
        print(secret)  # once: only its digest is stored
        print(f"new key for {args.name}: shown once, store it now", file=sys.stderr)
    return 0


def _secret() -> str:
    return "lk_" + secrets.token_urlsafe(32)


def _optional(**values: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items() if v is not None}


def _read(path: Path) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = json.loads(path.read_text())["keys"]
    return keys


def _write(path: Path, keys: list[dict[str, Any]]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, prefix=f".{path.name}.") as out:
        json.dump({"keys": keys}, out, indent=2)
        out.write("\n")
    os.chmod(out.name, 0o600)
    os.replace(out.name, path)
