#!/usr/bin/env bash
# The secrets docker-compose.yml mounts, generated once (kept after: PostgreSQL keeps the
# password of its first start in its volume). Nothing here is committed.
#
#   postgres.password        the database role's password (services get it as DATABASE_PASSWORD_FILE)
#   api-keys.json            intake's key ring: one key for the client "helpdesk", every action
#   helpdesk.key             that key itself (0600): the Bearer token for intake
#   grafana-admin.password   Grafana's admin password (anonymous users only view)
#
# Usage: deploy/local/compose-secrets.sh   (make compose-secrets)
# Environment: LADDER_COMPOSE_SECRETS (var/secrets/compose)
set -euo pipefail
LOG_PREFIX="compose-secrets"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="${LADDER_COMPOSE_SECRETS:-$VAR_DIR/secrets/compose}"
require_cmd openssl "install it (apt-get install openssl)"
mkdir -p "$DIR"
chmod 700 "$DIR"

new_secret() { # new_secret FILE MODE: a random secret in FILE unless it has one
  [[ -s "$1" ]] && return 0
  (umask 077 && openssl rand -hex 24 >"$1")
  chmod "$2" "$1"
  say "new ${1#"$LADDER_ROOT"/}"
}

# Containers run as their own users and Compose mounts the files as they are: readable
# files (0644), in a directory (0700) only root enters.
new_secret "$DIR/postgres.password" 644
new_secret "$DIR/grafana-admin.password" 644
new_secret "$DIR/helpdesk.key" 600
if [[ ! -s "$DIR/api-keys.json" ]]; then
  digest="$(tr -d '\n' <"$DIR/helpdesk.key" | sha256sum | cut -d' ' -f1)"
  cat >"$DIR/api-keys.json" <<JSON
{"keys": [{"name": "helpdesk", "sha256": "$digest",
  "actions": ["create", "respond", "escalate", "return", "resolve", "reopen", "rate", "claim", "read"]}]}
JSON
  chmod 644 "$DIR/api-keys.json"
  say "new ${DIR#"$LADDER_ROOT"/}/api-keys.json; the helpdesk key is in ${DIR#"$LADDER_ROOT"/}/helpdesk.key"
fi
