#!/usr/bin/env bash
# Local Prometheus: Debian's `prometheus` with deploy/prometheus/prometheus.yml and its rules,
# scraping Ladder's services on 127.0.0.1. Data var/prometheus/data, log var/log/prometheus.log,
# pid var/run/prometheus.pid. Started by `make up` (platform.sh up), not by `make test`.
#
# Usage: deploy/local/prometheus.sh start|stop|status|reload
#   start   `promtool check config` (fails with its message), start, wait until GET /-/ready
#           answers. Refuses if the port is held by anything but this checkout's Prometheus.
#   stop    SIGTERM, wait, SIGKILL; returns once nothing listens on the port
#   status  one line; exit 0 if running and ready, 3 otherwise
#   reload  check the config again and send SIGHUP (after editing prometheus.yml or rules);
#           waits until Prometheus reports the reload, and fails if it did not succeed
#
# Environment (defaults):
#   PROMETHEUS_PORT (9090)  PROMETHEUS_RETENTION (15d)
#   PROMETHEUS_START_TIMEOUT (60)  PROMETHEUS_STOP_TIMEOUT (30)
#   PROMETHEUS_LIFECYCLE (0): 1 turns on the HTTP lifecycle API (POST /-/reload, /-/quit),
#     off by default: anyone who reaches the port could stop Prometheus with it.
#   INTAKE_PORT ROUTER_PORT ESCALATION_PORT METRICS_PORT (8001-8004), as services.sh uses them.
#   With every port at its default, Prometheus reads deploy/prometheus/prometheus.yml itself
#   (so `reload` picks up edits); otherwise a copy with the ports replaced is written to
#   var/prometheus/prometheus.yml on each start and reload.
set -euo pipefail
LOG_PREFIX="prometheus"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS_RETENTION="${PROMETHEUS_RETENTION:-15d}"
PROMETHEUS_START_TIMEOUT="${PROMETHEUS_START_TIMEOUT:-60}"
PROMETHEUS_STOP_TIMEOUT="${PROMETHEUS_STOP_TIMEOUT:-30}"
check_port_var PROMETHEUS_PORT "$PROMETHEUS_PORT"
is_uint "$PROMETHEUS_START_TIMEOUT" || die "PROMETHEUS_START_TIMEOUT must be seconds, got '$PROMETHEUS_START_TIMEOUT'"
is_uint "$PROMETHEUS_STOP_TIMEOUT" || die "PROMETHEUS_STOP_TIMEOUT must be seconds, got '$PROMETHEUS_STOP_TIMEOUT'"
[[ "$PROMETHEUS_RETENTION" =~ ^[0-9]+(ms|s|m|h|d|w|y)$ ]] ||
  die "PROMETHEUS_RETENTION must be a duration such as 15d or 12h, got '$PROMETHEUS_RETENTION'"

# target ports: default ones as written in prometheus.yml, and the ones to use
declare -A DEFAULT_PORTS=([PROMETHEUS_PORT]=9090 [INTAKE_PORT]=8001 [ROUTER_PORT]=8002 [ESCALATION_PORT]=8003 [METRICS_PORT]=8004)
for v in "${!DEFAULT_PORTS[@]}"; do
  if [[ -n "${!v:-}" ]]; then check_port_var "$v" "${!v}"; fi
done

BASE_URL="http://127.0.0.1:$PROMETHEUS_PORT"
SOURCE_CONF="$LADDER_ROOT/deploy/prometheus/prometheus.yml"
PROM_DIR="$VAR_DIR/prometheus"
DATA_DIR="$PROM_DIR/data"
RENDERED_CONF="$PROM_DIR/prometheus.yml"
PIDFILE="$RUN_DIR/prometheus.pid"
LOGFILE="$LOG_DIR/prometheus.log"

# --- helpers -------------------------------------------------------------------------

# pid of OUR Prometheus (from the pid file, or the owner of the port using our data dir), or nothing
our_pid() {
  local p
  p="$(read_pidfile "$PIDFILE")"
  if [[ -n "$p" ]] && pid_cmdline_has "$p" "--storage.tsdb.path=$DATA_DIR"; then
    echo "$p"; return 0
  fi
  for p in $(port_pids "$PROMETHEUS_PORT"); do
    if pid_cmdline_has "$p" "--storage.tsdb.path=$DATA_DIR"; then echo "$p"; return 0; fi
  done
}

ready() { curl -fsS --max-time 2 "$BASE_URL/-/ready" >/dev/null 2>&1; }

# Prints the config file to run with: the repository's, or a copy with non-default ports.
config_file() {
  local v sed_args=()
  for v in "${!DEFAULT_PORTS[@]}"; do
    if [[ -n "${!v:-}" && "${!v}" != "${DEFAULT_PORTS[$v]}" ]]; then
      sed_args+=(-e "s/127\.0\.0\.1:${DEFAULT_PORTS[$v]}\"/127.0.0.1:${!v}\"/")
    fi
  done
  if ((${#sed_args[@]} == 0)); then
    echo "$SOURCE_CONF"; return 0
  fi
  mkdir -p "$PROM_DIR"
  # rule_files are relative to the config file: point them back at the repository
  sed "${sed_args[@]}" -e "s#^\( *- \)rules/#\1$LADDER_ROOT/deploy/prometheus/rules/#" \
    "$SOURCE_CONF" >"$RENDERED_CONF.tmp.$$"
  mv "$RENDERED_CONF.tmp.$$" "$RENDERED_CONF"
  echo "$RENDERED_CONF"
}

check_config() { # check_config FILE
  local out
  if ! out="$(promtool check config "$1" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "promtool check config ${1#"$LADDER_ROOT"/} failed (see above)"
  fi
}

# "N/M targets up", from Prometheus' own `up` series
targets_summary() {
  curl -fsS --max-time 3 "$BASE_URL/api/v1/query" --data-urlencode 'query=up' 2>/dev/null | python3 -c '
import json, sys
result = json.load(sys.stdin)["data"]["result"]
down = sorted(r["metric"].get("job", "?") for r in result if r["value"][1] != "1")
print(f"{len(result) - len(down)}/{len(result)} targets up" + (f" (down: {chr(32).join(down)})" if down else ""))
' 2>/dev/null || echo "targets unknown"
}

wait_ready() { # wait_ready PID
  local pid="$1" deadline=$(($(now_s) + PROMETHEUS_START_TIMEOUT))
  while :; do
    if ! pid_alive "$pid"; then
      tail -n 30 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "prometheus (pid $pid) exited during startup (last lines of ${LOGFILE#"$LADDER_ROOT"/} above)"
    fi
    ready && return 0
    if (($(now_s) >= deadline)); then
      tail -n 30 "$LOGFILE" >&2 || true
      die "prometheus (pid $pid) not ready on $BASE_URL after ${PROMETHEUS_START_TIMEOUT}s (last lines of ${LOGFILE#"$LADDER_ROOT"/} above; it is left running, use '$0 stop')"
    fi
    sleep 0.3
  done
}

# --- commands ------------------------------------------------------------------------

cmd_start() {
  require_cmd prometheus "install it (apt-get install prometheus) or run deploy/local/install.sh"
  require_cmd promtool "install it (apt-get install prometheus) or run deploy/local/install.sh"
  require_cmd curl "install it (apt-get install curl) or run deploy/local/install.sh"
  take_lock prometheus
  local pid conf t0
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    echo "$pid" >"$PIDFILE"
    wait_ready "$pid"
    say "already running (pid $pid) on $BASE_URL"
    return 0
  fi
  rm -f "$PIDFILE"
  if port_listening "$PROMETHEUS_PORT"; then
    die "port $PROMETHEUS_PORT is already in use by $(describe_port_owner "$PROMETHEUS_PORT"), which is not Ladder's Prometheus; stop it or set PROMETHEUS_PORT"
  fi
  conf="$(config_file)"
  check_config "$conf"
  mkdir -p "$DATA_DIR"
  [[ -f "$LOGFILE" ]] && mv -f "$LOGFILE" "$LOGFILE.1"
  t0=$(now_s)
  local lifecycle=()
  [[ "${PROMETHEUS_LIFECYCLE:-0}" != 1 ]] || lifecycle=(--web.enable-lifecycle)
  setsid nohup prometheus \
    --config.file="$conf" \
    --storage.tsdb.path="$DATA_DIR" \
    --storage.tsdb.retention.time="$PROMETHEUS_RETENTION" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    "${lifecycle[@]}" \
    >>"$LOGFILE" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_ready "$pid"
  say "started (pid $pid) on $BASE_URL in $(($(now_s) - t0))s, config ${conf#"$LADDER_ROOT"/}, log ${LOGFILE#"$LADDER_ROOT"/}"
}

cmd_stop() {
  take_lock prometheus
  local pid
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PIDFILE"
    if port_listening "$PROMETHEUS_PORT"; then
      warn "not running; port $PROMETHEUS_PORT is held by $(describe_port_owner "$PROMETHEUS_PORT"), not ours, left alone"
    else
      say "not running"
    fi
    return 0
  fi
  stop_pid "$pid" "$PROMETHEUS_STOP_TIMEOUT" "prometheus" || die "could not stop prometheus pid $pid"
  rm -f "$PIDFILE"
  wait_port_free "$PROMETHEUS_PORT" 15 || die "port $PROMETHEUS_PORT still in use after stopping prometheus: $(describe_port_owner "$PROMETHEUS_PORT")"
  say "stopped (was pid $pid)"
}

cmd_status() {
  local pid
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    if ready; then
      say "running (pid $pid) on $BASE_URL, ready, $(targets_summary)"
      return 0
    fi
    say "running (pid $pid) on $BASE_URL, NOT ready"
    return 3
  fi
  if port_listening "$PROMETHEUS_PORT"; then
    say "stopped (port $PROMETHEUS_PORT held by $(describe_port_owner "$PROMETHEUS_PORT"), not ours)"
  else
    say "stopped"
  fi
  return 3
}

reload_metric() { # the value of METRIC on Prometheus's own /metrics, or nothing
  curl -fsS --max-time 5 "$BASE_URL/metrics" 2>/dev/null | awk -v m="$1" '$1 == m { print $2 }' || true
}

cmd_reload() {
  require_cmd promtool "install it (apt-get install prometheus) or run deploy/local/install.sh"
  take_lock prometheus
  local pid out
  pid="$(our_pid)"
  [[ -n "$pid" ]] || die "not running; use '$0 start'"
  check_config "$(config_file)"
  # SIGHUP, not the lifecycle API (off by default); the reload's outcome is in /metrics.
  local before after deadline=$(($(now_s) + 30))
  before="$(reload_metric prometheus_config_last_reload_success_timestamp_seconds)"
  kill -HUP "$pid"
  while :; do
    after="$(reload_metric prometheus_config_last_reload_success_timestamp_seconds)"
    [[ "$after" != "$before" ]] && break
    [[ "$(reload_metric prometheus_config_last_reload_successful)" == 0 ]] &&
      die "reload failed (see ${LOGFILE#"$LADDER_ROOT"/})"
    (($(now_s) >= deadline)) && die "no reload reported within 30s (see ${LOGFILE#"$LADDER_ROOT"/})"
    sleep 0.3
  done
  say "reloaded (pid $pid)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reload) cmd_reload ;;
  *) echo "usage: $0 start|stop|status|reload" >&2; exit 2 ;;
esac
