#!/usr/bin/env bash
# The whole local platform: system packages, PostgreSQL, Kafka (+ topics), Prometheus,
# Ladder's services.
#
# Usage: deploy/local/platform.sh up|down|status|up-test|down-test [--no-services]
#
#   up         install.sh; postgres.sh start; kafka.sh start (creates topics); prometheus.sh start;
#              services.sh start (every services/<name>/__main__.py). Safe to run again: running
#              parts are left alone. Claims everything for the user: it deletes the up-test
#              record, so a later down-test stops nothing.
#   down       services.sh stop; prometheus.sh stop; kafka.sh stop; postgres.sh stop (stops the
#              cluster only if we started it). Afterwards nothing of ours listens on 9092/9093/9090.
#   status     one line per component (postgres, kafka, prometheus, each service); exit 0 if all are up.
#   up-test    like up, but without Prometheus (tests that need one start their own), and records
#              in var/run/platform.test-started which components THIS call started (those already
#              running are not recorded).
#   down-test  stops only what var/run/platform.test-started lists (and drops the database
#              roles per service made meanwhile: postgres.sh service-role), then deletes it; stops
#              nothing if the file is absent. Platform parts the developer had up stay up.
#   --no-services   (up, up-test) start only PostgreSQL, Kafka and (up) Prometheus.
#
# Makefile:
#   up:    ; bash deploy/local/platform.sh up
#   down:  ; bash deploy/local/platform.sh down
#   test:  ; bash deploy/local/platform.sh up-test [--no-services] && \
#            { .venv/bin/python -m pytest ...; rc=$$?; bash deploy/local/platform.sh down-test; exit $$rc; }
#
# State: var/run (pids, markers, locks), var/log (logs), var/kafka (jars, config, data).
# Environment: see kafka.sh, postgres.sh, prometheus.sh and services.sh (KAFKA_PORT, DATABASE_URL,
#   PROMETHEUS_PORT, ...);
#   SKIP_INSTALL=1 skips install.sh.
set -euo pipefail
LOG_PREFIX="platform"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEST_RECORD="$RUN_DIR/platform.test-started"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"

cmd="${1:-}"
shift || true
with_services=1
for a in "$@"; do
  case "$a" in
    --no-services) with_services=0 ;;
    *) die "unknown option '$a' (usage: $0 up|down|status|up-test|down-test [--no-services])" ;;
  esac
done

k() { "$DEPLOY_LOCAL/kafka.sh" "$@"; }
pg() { "$DEPLOY_LOCAL/postgres.sh" "$@"; }
svc() { "$DEPLOY_LOCAL/services.sh" "$@"; }
prom() { "$DEPLOY_LOCAL/prometheus.sh" "$@"; }

do_up() { # do_up RECORD_FILE_OR_EMPTY WITH_PROMETHEUS(0|1)
  local record="$1" with_prometheus="$2" pg_was_up=1 kafka_was_up=1 t0
  t0=$(now_s)
  [[ "${SKIP_INSTALL:-0}" == 1 ]] || "$DEPLOY_LOCAL/install.sh"
  pg status >/dev/null 2>&1 || pg_was_up=0
  k status >/dev/null 2>&1 || kafka_was_up=0
  pg start
  [[ -n "$record" && "$pg_was_up" == 0 ]] && echo postgres >>"$record"
  k start
  [[ -n "$record" && "$kafka_was_up" == 0 ]] && echo kafka >>"$record"
  if ((with_prometheus)); then prom start; fi
  if ((with_services)); then
    STARTED_LIST_FILE="$record" svc start
  fi
  say "up in $(($(now_s) - t0))s"
}

do_down() {
  svc stop
  prom stop
  k stop
  pg stop
  rm -f "$TEST_RECORD"
  if port_listening "$KAFKA_PORT"; then
    warn "port $KAFKA_PORT is still in use by $(describe_port_owner "$KAFKA_PORT")"
  fi
  say "down"
}

case "$cmd" in
  up)
    take_lock platform
    ensure_var_dirs
    do_up "" 1
    rm -f "$TEST_RECORD"
    ;;
  up-test)
    take_lock platform
    ensure_var_dirs
    touch "$TEST_RECORD"
    do_up "$TEST_RECORD" 0
    ;;
  down)
    take_lock platform
    do_down
    ;;
  down-test)
    take_lock platform
    if [[ ! -f "$TEST_RECORD" ]]; then
      say "nothing recorded by up-test; leaving everything running"
      exit 0
    fi
    mapfile -t parts < <(sort -u "$TEST_RECORD")
    svcs=()
    for p in "${parts[@]}"; do [[ "$p" == service:* ]] && svcs+=("${p#service:}"); done
    ((${#svcs[@]})) && svc stop "${svcs[@]}"
    for p in "${parts[@]}"; do [[ "$p" == pgrole:* ]] && pg drop-service-role "${p#pgrole:}"; done
    [[ " ${parts[*]} " == *" kafka "* ]] && k stop
    [[ " ${parts[*]} " == *" postgres "* ]] && pg stop
    rm -f "$TEST_RECORD"
    say "stopped what up-test started: ${parts[*]:-nothing}"
    ;;
  status)
    rc=0
    pg status || rc=3
    k status || rc=3
    prom status || rc=3
    svc status || rc=3
    exit "$rc"
    ;;
  *)
    echo "usage: $0 up|down|status|up-test|down-test [--no-services]" >&2
    exit 2
    ;;
esac
