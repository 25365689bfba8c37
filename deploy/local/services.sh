#!/usr/bin/env bash
# Ladder's own services, run from the repo's virtualenv in the background.
# A service is a directory services/<name>/ containing __main__.py; it runs as
#   <repo>/.venv/bin/python -m services.<name>     (cwd: repo root)
# with its log in var/log/<name>.log and its pid in var/run/<name>.pid.
#
# Usage: deploy/local/services.sh start|stop|status|list [NAME...]   (default: all services)
#   start   start those not already running; then wait for GET /healthz on the service's
#           port (intake 8001, router 8002, escalation 8003, metrics 8004; others: only
#           check it is still alive after 2s). Fails with the log tail if one dies.
#   stop    SIGTERM (to the process group), SIGKILL after SERVICE_STOP_TIMEOUT (15) s
#   status  one line per service; exit 0 if all running, 3 otherwise
#   list    print the service names
#
# Environment: LADDER_PYTHON (<repo>/.venv/bin/python), SERVICE_START_TIMEOUT (30),
#   SERVICE_STOP_TIMEOUT (15), SERVICE_HEALTH_WAIT (1; 0 = do not wait for /healthz),
#   <NAME>_PORT (e.g. INTAKE_PORT, which the service itself reads) moves the health check.
#   KAFKA_BOOTSTRAP_SERVERS defaults to localhost:$KAFKA_PORT for the services; on that local
#   broker each service logs in as its own principal (var/secrets/kafka-<name>.password, see
#   kafka.sh), whatever KAFKA_SASL_* the caller had. On a local PostgreSQL cluster that
#   postgres.sh manages, each service logs in as its own role too (`postgres.sh service-role`:
#   ladder_<name>, owning schema <NAME>_SCHEMA_NAME and nothing else; DATABASE_URL becomes that
#   role's, its password in DATABASE_PASSWORD_FILE); the caller's DATABASE_URL is the admin's.
#   LADDER_DB_ROLES=0 keeps the caller's DATABASE_URL for the services. Everything else
#   (INTAKE_API_KEYS_FILE, ...) is passed through.
set -euo pipefail
LOG_PREFIX="services"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LADDER_PYTHON="${LADDER_PYTHON:-$LADDER_ROOT/.venv/bin/python}"
SERVICE_START_TIMEOUT="${SERVICE_START_TIMEOUT:-30}"
SERVICE_STOP_TIMEOUT="${SERVICE_STOP_TIMEOUT:-15}"
SERVICE_HEALTH_WAIT="${SERVICE_HEALTH_WAIT:-1}"
is_uint "$SERVICE_START_TIMEOUT" || die "SERVICE_START_TIMEOUT must be seconds, got '$SERVICE_START_TIMEOUT'"
is_uint "$SERVICE_STOP_TIMEOUT" || die "SERVICE_STOP_TIMEOUT must be seconds, got '$SERVICE_STOP_TIMEOUT'"

declare -A DEFAULT_PORTS=([intake]=8001 [router]=8002 [escalation]=8003 [metrics]=8004)

all_services() {
  local d n
  for d in "$LADDER_ROOT"/services/*/; do
    [[ -f "$d/__main__.py" ]] || continue
    n="$(basename "$d")"
    [[ "$n" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { warn "skipping services/$n: not a Python module name"; continue; }
    echo "$n"
  done
}

# services that have a pid file with a live `-m services.<name>` process (incl. removed ones)
running_from_pidfiles() {
  local f n p
  for f in "$RUN_DIR"/*.pid; do
    [[ -f "$f" ]] || continue
    n="$(basename "$f" .pid)"
    p="$(read_pidfile "$f")"
    [[ -n "$p" ]] && pid_cmdline_has "$p" "-m services.$n" && echo "$n"
  done
  return 0
}

svc_pid() { # pid of the running service NAME, or nothing
  local p
  p="$(read_pidfile "$RUN_DIR/$1.pid")"
  [[ -n "$p" ]] && pid_cmdline_has "$p" "-m services.$1" && echo "$p"
  return 0
}

svc_port() {
  local var="${1^^}_PORT"
  echo "${!var:-${DEFAULT_PORTS[$1]:-}}"
}

healthy() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null; }

start_one() {
  local n="$1" pid port log="$LOG_DIR/$1.log"
  pid="$(svc_pid "$n")"
  if [[ -n "$pid" ]]; then
    say "$n already running (pid $pid)"
    return 0
  fi
  port="$(svc_port "$n")"
  if [[ -n "$port" ]] && port_listening "$port"; then
    die "$n: port $port is already in use by $(describe_port_owner "$port"); stop it or set ${n^^}_PORT"
  fi
  [[ -f "$log" ]] && mv -f "$log" "$log.1"
  local db_url="" schema_var="${n^^}_SCHEMA_NAME" rc=0
  if [[ "${LADDER_DB_ROLES:-1}" != 0 ]]; then
    db_url="$("$DEPLOY_LOCAL/postgres.sh" service-role "$n" "${!schema_var:-$n}")" || rc=$?
    ((rc == 0 || rc == 3)) || die "$n: could not set up its database role (postgres.sh service-role above)"
    ((rc == 0)) || db_url=""
  fi
  (
    cd "$LADDER_ROOT"
    export PYTHONUNBUFFERED=1
    export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-localhost:${KAFKA_PORT:-9092}}"
    if [[ "$KAFKA_BOOTSTRAP_SERVERS" == "localhost:${KAFKA_PORT:-9092}" && -f "$VAR_DIR/secrets/kafka-$n.password" ]]; then
      export KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM=SCRAM-SHA-512 KAFKA_SASL_USERNAME="$n"
      export KAFKA_SASL_PASSWORD_FILE="$VAR_DIR/secrets/kafka-$n.password" KAFKA_SSL_CA_FILE="$VAR_DIR/secrets/ca.crt"
      unset KAFKA_SASL_PASSWORD
    fi
    if [[ -n "$db_url" ]]; then
      export DATABASE_URL="$db_url" DATABASE_PASSWORD_FILE="$VAR_DIR/secrets/postgres-$n.password"
    fi
    exec setsid nohup "$LADDER_PYTHON" -m "services.$n" >>"$log" 2>&1 </dev/null 9>&-
  ) &
  pid=$!
  echo "$pid" >"$RUN_DIR/$n.pid"
  STARTED+=("$n:$pid:$port")
}

wait_one() { # wait_one NAME PID PORT
  local n="$1" pid="$2" port="$3" log="$LOG_DIR/$1.log" t0 deadline
  t0=$(now_s)
  deadline=$((t0 + SERVICE_START_TIMEOUT))
  while :; do
    if ! pid_alive "$pid"; then
      tail -n 30 "$log" >&2 || true
      rm -f "$RUN_DIR/$n.pid"
      die "$n (pid $pid) exited during startup (last lines of ${log#"$LADDER_ROOT"/} above)"
    fi
    if [[ -z "$port" || "$SERVICE_HEALTH_WAIT" == 0 ]]; then
      (($(now_s) - t0 >= 2)) && break
    elif healthy "$port"; then
      break
    fi
    if (($(now_s) >= deadline)); then
      tail -n 30 "$log" >&2 || true
      die "$n (pid $pid) not healthy on http://127.0.0.1:$port/healthz after ${SERVICE_START_TIMEOUT}s (last lines of ${log#"$LADDER_ROOT"/} above; left running)"
    fi
    sleep 0.3
  done
  say "$n started (pid $pid$([[ -n "$port" && "$SERVICE_HEALTH_WAIT" != 0 ]] && echo ", healthy on :$port")), log ${log#"$LADDER_ROOT"/}"
}

cmd_start() {
  ensure_var_dirs
  local names=("$@") n s
  ((${#names[@]})) || mapfile -t names < <(all_services)
  if ((${#names[@]} == 0)); then
    say "no services (no services/<name>/__main__.py yet)"
    return 0
  fi
  [[ -x "$LADDER_PYTHON" ]] || die "no Python at $LADDER_PYTHON: create the virtualenv first (e.g. make venv) or set LADDER_PYTHON"
  STARTED=()
  for n in "${names[@]}"; do
    [[ -f "$LADDER_ROOT/services/$n/__main__.py" ]] || die "no such service: services/$n/__main__.py"
    start_one "$n"
  done
  for s in "${STARTED[@]}"; do
    IFS=: read -r n pid port <<<"$s"
    wait_one "$n" "$pid" "$port"
  done
  # for platform.sh up-test: the services this call started
  if [[ -n "${STARTED_LIST_FILE:-}" ]]; then
    for s in "${STARTED[@]}"; do echo "service:${s%%:*}" >>"$STARTED_LIST_FILE"; done
  fi
}

cmd_stop() {
  local names=("$@") n pid
  ((${#names[@]})) || mapfile -t names < <({ all_services; running_from_pidfiles; } | sort -u)
  for n in "${names[@]}"; do
    pid="$(svc_pid "$n")"
    if [[ -z "$pid" ]]; then
      rm -f "$RUN_DIR/$n.pid"
      continue
    fi
    stop_pid "$pid" "$SERVICE_STOP_TIMEOUT" "$n" || die "could not stop $n (pid $pid)"
    rm -f "$RUN_DIR/$n.pid"
    say "$n stopped (was pid $pid)"
  done
}

cmd_status() {
  local names=("$@") n pid port rc=0
  ((${#names[@]})) || mapfile -t names < <({ all_services; running_from_pidfiles; } | sort -u)
  ((${#names[@]})) || { say "none defined"; return 0; }
  for n in "${names[@]}"; do
    pid="$(svc_pid "$n")"
    port="$(svc_port "$n")"
    if [[ -n "$pid" ]]; then
      if [[ -n "$port" ]]; then
        healthy "$port" && echo "$n: running (pid $pid), healthy on :$port" ||
          echo "$n: running (pid $pid), NOT healthy on :$port"
      else
        echo "$n: running (pid $pid)"
      fi
    else
      echo "$n: stopped"
      rc=3
    fi
  done
  return "$rc"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  list) all_services ;;
  *) echo "usage: $0 start|stop|status|list [NAME...]" >&2; exit 2 ;;
esac
