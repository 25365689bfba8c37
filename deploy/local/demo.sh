#!/usr/bin/env bash
# `make demo`: the whole system from a fresh clone, with simulated support traffic.
#
#   1. install what is missing, start PostgreSQL, Kafka and Prometheus
#   2. start the demo namespace afresh: topics demo.support.* and the schemas *_demo
#      (intake's own state is shared; its tickets are new every run)
#   3. run the four services on the demo namespace with the demo charter (SLAs in seconds)
#   4. `ladder simulate`: DEMO_TICKETS tickets (default 2000) down every path of the charter,
#      then the per-tier KPIs as the metrics service exports them, checked against the truth
#      computed from the stream (exit 1 if any differs)
#   5. leave everything running and print the URLs; `make down` stops it all.
#
# Intake has the four help desks of deploy/helpdesks connected (INTAKE_HELPDESKS_DIR), their
# secrets generated once in var/secrets/helpdesks.env (development only, never committed).
# DEMO_VIA=zendesk|jira|zammad|freshdesk sends the tickets the simulator would post over HTTP
# as that help desk's signed webhooks instead (`ladder simulate --via`; the topic share stays).
#
# Environment: DEMO_TICKETS (2000), DEMO_SEED (42), DEMO_RATE (tickets/s; default flat out),
#   DEMO_VIA (none).
set -euo pipefail
LOG_PREFIX="demo"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_TICKETS="${DEMO_TICKETS:-2000}"
DEMO_SEED="${DEMO_SEED:-42}"
is_uint "$DEMO_TICKETS" || die "DEMO_TICKETS must be a number, got '$DEMO_TICKETS'"
is_uint "$DEMO_SEED" || die "DEMO_SEED must be a number, got '$DEMO_SEED'"
PY="${LADDER_PYTHON:-$LADDER_ROOT/.venv/bin/python}"
export INTAKE_HELPDESKS_DIR="${INTAKE_HELPDESKS_DIR:-$LADDER_ROOT/deploy/helpdesks}"
DEMO_VIA="${DEMO_VIA:-}"
[[ -z "$DEMO_VIA" || -f "$INTAKE_HELPDESKS_DIR/$DEMO_VIA.yaml" ]] ||
  die "DEMO_VIA names no help desk: no $INTAKE_HELPDESKS_DIR/$DEMO_VIA.yaml (zendesk, jira, zammad, freshdesk)"

export LADDER_TOPIC_PREFIX="demo."
export LADDER_CHARTER="$LADDER_ROOT/deploy/charter/demo.yaml"
export INTAKE_SCHEMA_NAME=intake_demo ROUTER_SCHEMA_NAME=router_demo ESCALATION_SCHEMA_NAME=escalation_demo METRICS_SCHEMA_NAME=metrics_demo
export METRICS_REFRESH_INTERVAL_S=2
export INTAKE_API_KEYS_FILE="${INTAKE_API_KEYS_FILE:-$LADDER_ROOT/deploy/local/api-keys.json}"
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-localhost:${KAFKA_PORT:-9092}}"

# The platform's parts one by one (not `platform.sh up`, which would claim what `make test`
# started: the demo runs inside the test suite too).
[[ "${SKIP_INSTALL:-0}" == 1 ]] || "$DEPLOY_LOCAL/install.sh"
"$DEPLOY_LOCAL/postgres.sh" start
"$DEPLOY_LOCAL/kafka.sh" start
# The simulator and the reset act as the admin principal (services get their own).
set -a
# shellcheck source=/dev/null
[[ ! -f "$VAR_DIR/secrets/kafka-client.env" ]] || source "$VAR_DIR/secrets/kafka-client.env"
set +a
"$DEPLOY_LOCAL/prometheus.sh" start
# The help desks' webhook secrets: intake checks deliveries with them, the simulator signs
# as the help desk with them.
export HELPDESK_SECRETS_FILE="${HELPDESK_SECRETS_FILE:-$VAR_DIR/secrets/helpdesks.env}"
"$DEPLOY_LOCAL/helpdesk-secrets.sh"
set -a
# shellcheck source=/dev/null
source "$HELPDESK_SECRETS_FILE"
set +a
"$DEPLOY_LOCAL/services.sh" stop
(cd "$LADDER_ROOT" && "$PY" -m simulator.reset --prefix "$LADDER_TOPIC_PREFIX" \
  --schemas "$INTAKE_SCHEMA_NAME" "$ROUTER_SCHEMA_NAME" "$ESCALATION_SCHEMA_NAME" "$METRICS_SCHEMA_NAME")
"$DEPLOY_LOCAL/services.sh" start

rate=() via=()
[[ -n "${DEMO_RATE:-}" ]] && rate=(--rate "$DEMO_RATE")
[[ -n "$DEMO_VIA" ]] && via=(--via "$DEMO_VIA")
rc=0
(cd "$LADDER_ROOT" && "$PY" -m cli.main simulate --tickets "$DEMO_TICKETS" --seed "$DEMO_SEED" "${rate[@]}" \
  "${via[@]}" --topic-prefix "$LADDER_TOPIC_PREFIX" --charter "$LADDER_CHARTER") || rc=$?

# This week's report (ladder report: HTML and Markdown), read with the local lead key.
(cd "$LADDER_ROOT" && LADDER_READ_KEY=ladder-dev-lead-key "$PY" -m cli.main report --out "$VAR_DIR/reports") || rc=$?

via_line=""
[[ -z "$DEMO_VIA" ]] || via_line=$'\n'"                  this run's HTTP share came in through the help desk $DEMO_VIA"
cat <<TXT

Ladder is running (demo namespace: topics ${LADDER_TOPIC_PREFIX}support.*, charter deploy/charter/demo.yaml):
  intake API      http://127.0.0.1:8001/docs      key: ladder-dev-helpdesk-key (development only)
  help desks      http://127.0.0.1:8001/v1/webhooks/<vendor>/<vendor>  (zendesk, jira, zammad, freshdesk;
                  secrets in var/secrets/helpdesks.env, development only; docs/helpdesks)${via_line}
  topic contracts http://127.0.0.1:8001/asyncapi
  router          http://127.0.0.1:8002/metrics
  escalation      http://127.0.0.1:8003/metrics
  metrics         http://127.0.0.1:8004/v1/kpis  (or: .venv/bin/ladder kpis)
  ladder page     http://127.0.0.1:8004/ladder    (ticket search: key ladder-dev-lead-key)
  weekly report   var/reports/ (.venv/bin/ladder report --week YYYY-Www)
  Prometheus      http://127.0.0.1:9090           (rules and alerts of deploy/prometheus)
  Grafana         deploy/grafana/ (provisioned by docker-compose.yml)
Stop everything with: make down
TXT
exit "$rc"
