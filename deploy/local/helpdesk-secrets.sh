#!/usr/bin/env bash
# Development-only webhook secrets of the help desks in deploy/helpdesks/*.yaml, generated
# once in var/secrets/helpdesks.env (never committed; delete it to start over): one
# LADDER_<VENDOR>_SECRET per mapping's secret_env, which `make demo` gives intake (to check
# deliveries) and `ladder simulate --via` (to sign them). A real connection's secret comes
# from the help desk (docs/helpdesks), never from here.
#
# Usage: deploy/local/helpdesk-secrets.sh   (demo.sh runs it)
# Environment: HELPDESK_SECRETS_FILE (var/secrets/helpdesks.env)
set -euo pipefail
LOG_PREFIX="helpdesk-secrets"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FILE="${HELPDESK_SECRETS_FILE:-$VAR_DIR/secrets/helpdesks.env}"
require_cmd openssl "install it (apt-get install openssl)"
umask 077
mkdir -p "$(dirname "$FILE")"
if [[ ! -s "$FILE" ]]; then
  {
    echo "# Development only: webhook secrets of deploy/helpdesks/*.yaml (deploy/local/helpdesk-secrets.sh)."
    for vendor in ZENDESK JIRA ZAMMAD FRESHDESK; do
      echo "LADDER_${vendor}_SECRET=$(openssl rand -hex 24)"
    done
  } >"$FILE.tmp"
  mv "$FILE.tmp" "$FILE"
  say "new development webhook secrets in ${FILE#"$LADDER_ROOT"/}"
fi
