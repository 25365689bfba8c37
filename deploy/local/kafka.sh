#!/usr/bin/env bash
# Local Apache Kafka: a single KRaft node (broker + controller) run from the pinned jars of
# deploy/local/kafka/pom.xml, no Docker. State under var/kafka/, log var/log/kafka.log,
# pid var/run/kafka.pid, development secrets under var/secrets/ (kafka-secrets.sh).
#
# Secured by default (docs: README "Security"):
#   KAFKA_PORT         SASL_SSL, SCRAM-SHA-512: services, tools and tests (host name checked)
#   KAFKA_TOOLS_PORT   SASL_SSL, PLAIN, for kcat and the Java tools: Debian's kcat links a
#                      librdkafka (< 2.6.1) whose SCRAM Kafka 4 refuses; also inter-broker
#   KAFKA_CONTROLLER_PORT  SASL_PLAINTEXT, PLAIN, on loopback only
# StandardAuthorizer, allow.everyone.if.no.acl.found=false, super user User:admin; SCRAM
# credentials are created at format time; one principal per service and `upstream` (writers
# of the commands topic), with the least-privilege ACLs of `acl_specs` below.
#
# Usage: deploy/local/kafka.sh start|stop|status|topics|reset
#   start   resolve jars (cached), write config, format storage (first time only), start the
#           broker, wait until a metadata request succeeds, create the topics if missing
#   stop    SIGTERM, wait, SIGKILL; returns once nothing listens on the ports
#   status  one line; exit 0 if running and answering, 3 otherwise
#   topics  create the topics if missing (broker must be running)
#   reset   stop and delete var/kafka/data (all topics and messages)
#
# Environment (defaults):
#   KAFKA_PORT (9092)  KAFKA_CONTROLLER_PORT (9093)  KAFKA_TOOLS_PORT (KAFKA_PORT + 2)  KAFKA_PARTITIONS (6)
#   KAFKA_ACL_NAMESPACES ("- demo."; topic prefixes the services' ACLs cover, "-" = none)
#   KAFKA_TOPICS ("support.ticket-events support.ticket-commands support.dead-letter")
#   KAFKA_BENCH_PLAINTEXT_PORT (unset): a PLAINTEXT listener on 127.0.0.1 whose anonymous
#     clients are super users, for `bench pipeline --plaintext` to compare on the same broker;
#     development only, never with data that matters
#   KAFKA_HEAP_OPTS ("-Xms256m -Xmx768m")  KAFKA_START_TIMEOUT (90)  KAFKA_STOP_TIMEOUT (30)
set -euo pipefail
LOG_PREFIX="kafka"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=deploy/local/kafka-common.sh
source "$DEPLOY_LOCAL/kafka-common.sh"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_TOOLS_PORT="${KAFKA_TOOLS_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_ACL_NAMESPACES="${KAFKA_ACL_NAMESPACES:-- demo.}"
export KAFKA_PORT KAFKA_TOOLS_PORT
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-6}"
KAFKA_TOPICS="${KAFKA_TOPICS:-support.ticket-events support.ticket-commands support.dead-letter}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
check_port_var KAFKA_PORT "$KAFKA_PORT"
check_port_var KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
check_port_var KAFKA_TOOLS_PORT "$KAFKA_TOOLS_PORT"
[[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ (both $KAFKA_PORT)"
{ is_uint "$KAFKA_PARTITIONS" && ((KAFKA_PARTITIONS > 0)); } || die "KAFKA_PARTITIONS must be a positive integer, got '$KAFKA_PARTITIONS'"
is_uint "$KAFKA_START_TIMEOUT" || die "KAFKA_START_TIMEOUT must be seconds, got '$KAFKA_START_TIMEOUT'"
is_uint "$KAFKA_STOP_TIMEOUT" || die "KAFKA_STOP_TIMEOUT must be seconds, got '$KAFKA_STOP_TIMEOUT'"

BOOTSTRAP="localhost:$KAFKA_PORT"
TOOLS_BOOTSTRAP="localhost:$KAFKA_TOOLS_PORT" # kcat and the Java tools log in here
SECRETS="$VAR_DIR/secrets"
SERVICE_PRINCIPALS="intake router escalation metrics"
KAFKA_KCAT_CONFIG="$SECRETS/kcat.conf"
KAFKA_TOOLS_CONFIG="$SECRETS/tools.properties"
KAFKA_DIR="$VAR_DIR/kafka"
DATA_DIR="$KAFKA_DIR/data"
CONF="$KAFKA_DIR/server.properties"
PIDFILE="$RUN_DIR/kafka.pid"
LOGFILE="$LOG_DIR/kafka.log"

# --- helpers -------------------------------------------------------------------------

# pid of OUR broker (from the pid file, or the owner of the port running our config), or nothing
our_pid() {
  local p
  p="$(read_pidfile "$PIDFILE")"
  if [[ -n "$p" ]] && pid_cmdline_has "$p" "kafka.Kafka $CONF"; then
    echo "$p"; return 0
  fi
  for p in $(port_pids "$KAFKA_PORT") $(port_pids "$KAFKA_CONTROLLER_PORT") $(port_pids "$KAFKA_TOOLS_PORT"); do
    if pid_cmdline_has "$p" "kafka.Kafka $CONF"; then echo "$p"; return 0; fi
  done
}

metadata_ok() { kafka_metadata_ok "$TOOLS_BOOTSTRAP"; }
secret() { cat "$SECRETS/kafka-$1.password"; }

write_config() {
  mkdir -p "$KAFKA_DIR" "$DATA_DIR"
  local tmp="$CONF.tmp.$$" admin store listeners advertised protocols supers="User:admin"
  listeners="CLIENT://localhost:$KAFKA_PORT,TOOLS://localhost:$KAFKA_TOOLS_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  advertised="CLIENT://localhost:$KAFKA_PORT,TOOLS://localhost:$KAFKA_TOOLS_PORT"
  protocols="CLIENT:SASL_SSL,TOOLS:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
  if [[ -n "${KAFKA_BENCH_PLAINTEXT_PORT:-}" ]]; then # opt-in, loopback, benches only
    check_port_var KAFKA_BENCH_PLAINTEXT_PORT "$KAFKA_BENCH_PLAINTEXT_PORT"
    listeners+=",BENCH://127.0.0.1:$KAFKA_BENCH_PLAINTEXT_PORT"
    advertised+=",BENCH://127.0.0.1:$KAFKA_BENCH_PLAINTEXT_PORT"
    protocols+=",BENCH:PLAINTEXT"
    supers+=";User:ANONYMOUS"
    warn "PLAINTEXT bench listener on 127.0.0.1:$KAFKA_BENCH_PLAINTEXT_PORT: anyone on this host is a super user"
  fi
  admin="$(secret admin)"
  store="$(cat "$SECRETS/broker-store.password")"
  (umask 077 && : >"$tmp") # it holds the admin password
  cat >"$tmp" <<EOF
# Generated by deploy/local/kafka.sh on each start; edits are overwritten.
# Single-node KRaft: this node is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=TOOLS
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
# Clients: SCRAM-SHA-512 over TLS. kcat, the Java tools and the broker itself: PLAIN over TLS.
# The controller: PLAIN on loopback. Every login is a principal the authorizer judges.
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.tools.sasl.enabled.mechanisms=PLAIN
listener.name.tools.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
ssl.keystore.type=PKCS12
ssl.keystore.location=$SECRETS/broker.p12
ssl.keystore.password=$store
ssl.key.password=$store
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/ca.crt
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=$supers
log.dirs=$DATA_DIR
$(kafka_common_config "$KAFKA_PARTITIONS" 1 1)
EOF
  mv "$tmp" "$CONF"
}

format_storage_once() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    [[ -f "$KAFKA_DIR/secured" ]] && return 0
    die "${DATA_DIR#"$LADDER_ROOT"/} was formatted without SCRAM users (before the broker was secured); run '$0 reset'"
  fi
  local uuid p scram=()
  for p in admin $SERVICE_PRINCIPALS upstream; do
    scram+=(--add-scram "SCRAM-SHA-512=[name=$p,password=$(secret "$p")]")
  done
  uuid="$(kafka_random_uuid)"
  kafka_format_once "$CONF" "$DATA_DIR" "$uuid" --standalone "${scram[@]}"
  echo "$uuid" >"$KAFKA_DIR/cluster.id"
  touch "$KAFKA_DIR/secured"
}

ensure_topics() { kafka_ensure_topics "$TOOLS_BOOTSTRAP" "$KAFKA_PARTITIONS" 1 "$KAFKA_TOPICS"; }

# Least privilege, per namespace (topic prefix) in KAFKA_ACL_NAMESPACES. Applied once per
# spec (stamp in var/kafka/acls.applied); the tests and tools use User:admin (super user).
#   intake      reads commands; writes events and dead letters; group ladder-intake
#   router, escalation   read and write events; write dead letters; their group
#   metrics     reads events; writes dead letters only (poison it meets); its group
#   upstream    writes commands, nothing else
acl_specs() { # one AclCommand argument list per line
  local ns e c d n
  for ns in $KAFKA_ACL_NAMESPACES; do
    [[ "$ns" == - ]] && ns=""
    e="${ns}support.ticket-events" c="${ns}support.ticket-commands" d="${ns}support.dead-letter"
    echo "User:intake Read Describe --topic $c --group ladder-intake"
    echo "User:intake Write Describe --topic $e --topic $d"
    for n in router escalation; do
      echo "User:$n Read Describe --topic $e --group ladder-$n"
      echo "User:$n Write Describe --topic $e --topic $d"
    done
    echo "User:metrics Read Describe --topic $e --group ladder-metrics"
    echo "User:metrics Write Describe --topic $d"
    echo "User:upstream Write Describe --topic $c"
  done
}

ensure_acls() {
  local stamp="$KAFKA_DIR/acls.applied" want principal op1 op2 rest out
  want="$(acl_specs | sha256sum | cut -d' ' -f1)"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
  while read -r principal op1 op2 rest; do
    # shellcheck disable=SC2086  # rest is a list of arguments
    if ! out="$(kafka_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$TOOLS_BOOTSTRAP" \
      --command-config "$KAFKA_TOOLS_CONFIG" --add --allow-principal "$principal" \
      --operation "$op1" --operation "$op2" $rest 2>&1)"; then
      printf '%s\n' "$out" >&2
      die "could not add the ACLs of $principal"
    fi
  done < <(acl_specs)
  echo "$want" >"$stamp"
  say "ACLs in place for $SERVICE_PRINCIPALS upstream (namespaces: $KAFKA_ACL_NAMESPACES)"
}

wait_ready() { # wait_ready PID
  local pid="$1" deadline=$(($(now_s) + KAFKA_START_TIMEOUT))
  while :; do
    if ! pid_alive "$pid"; then
      tail -n 40 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "broker process $pid exited during startup (last lines of ${LOGFILE#"$LADDER_ROOT"/} above)"
    fi
    metadata_ok && return 0
    if (($(now_s) >= deadline)); then
      tail -n 40 "$LOGFILE" >&2 || true
      die "broker (pid $pid) not answering metadata requests on $BOOTSTRAP after ${KAFKA_START_TIMEOUT}s (last lines of ${LOGFILE#"$LADDER_ROOT"/} above; it is left running, use '$0 stop')"
    fi
    sleep 0.5
  done
}

# --- commands ------------------------------------------------------------------------

cmd_start() {
  require_cmd kcat "install it (apt-get install kcat) or run deploy/local/install.sh"
  require_cmd java "install Java 17 or run deploy/local/install.sh"
  take_lock kafka
  local pid t0
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    echo "$pid" >"$PIDFILE"
    wait_ready "$pid"
    say "already running (pid $pid) on $BOOTSTRAP"
    ensure_topics
    ensure_acls
    return 0
  fi
  rm -f "$PIDFILE"
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_TOOLS_PORT"; do
    if port_listening "$port"; then
      die "port $port is already in use by $(describe_port_owner "$port"), which is not Ladder's broker; stop it or set KAFKA_PORT/KAFKA_CONTROLLER_PORT"
    fi
  done

  "$DEPLOY_LOCAL/kafka-libs.sh" 9>&-
  "$DEPLOY_LOCAL/kafka-secrets.sh" 9>&-
  write_config
  format_storage_once

  t0=$(now_s)
  pid="$(kafka_launch "$CONF" "$LOGFILE" "$KAFKA_HEAP_OPTS")"
  echo "$pid" >"$PIDFILE"
  wait_ready "$pid"
  say "started (pid $pid) on $BOOTSTRAP in $(($(now_s) - t0))s, log ${LOGFILE#"$LADDER_ROOT"/}"
  ensure_topics
  ensure_acls
}

cmd_stop() {
  take_lock kafka
  local pid
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PIDFILE"
    if port_listening "$KAFKA_PORT"; then
      warn "not running; port $KAFKA_PORT is held by $(describe_port_owner "$KAFKA_PORT"), not ours, left alone"
    else
      say "not running"
    fi
    return 0
  fi
  stop_pid "$pid" "$KAFKA_STOP_TIMEOUT" "kafka broker" || die "could not stop broker pid $pid"
  rm -f "$PIDFILE"
  wait_port_free "$KAFKA_PORT" 15 || die "port $KAFKA_PORT still in use after stopping the broker: $(describe_port_owner "$KAFKA_PORT")"
  wait_port_free "$KAFKA_TOOLS_PORT" 15 || die "port $KAFKA_TOOLS_PORT still in use after stopping the broker: $(describe_port_owner "$KAFKA_TOOLS_PORT")"
  wait_port_free "$KAFKA_CONTROLLER_PORT" 15 || die "port $KAFKA_CONTROLLER_PORT still in use after stopping the broker: $(describe_port_owner "$KAFKA_CONTROLLER_PORT")"
  say "stopped (was pid $pid)"
}

cmd_status() {
  local pid
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    if metadata_ok; then
      local n
      n="$(kafka_count_topics "$TOOLS_BOOTSTRAP" "$KAFKA_TOPICS")"
      say "running (pid $pid) on $BOOTSTRAP, ready, $n/$(wc -w <<<"$KAFKA_TOPICS") topics"
      return 0
    fi
    say "running (pid $pid) on $BOOTSTRAP, NOT answering metadata requests"
    return 3
  fi
  if port_listening "$KAFKA_PORT"; then
    say "stopped (port $KAFKA_PORT held by $(describe_port_owner "$KAFKA_PORT"), not ours)"
  else
    say "stopped"
  fi
  return 3
}

cmd_topics() {
  require_cmd kcat "install it (apt-get install kcat) or run deploy/local/install.sh"
  metadata_ok || die "no broker answering on $TOOLS_BOOTSTRAP; run '$0 start'"
  [[ -d "$KAFKA_LIBS" ]] || "$DEPLOY_LOCAL/kafka-libs.sh"
  ensure_topics
  ensure_acls
}

cmd_reset() {
  cmd_stop
  rm -rf "$DATA_DIR" "$KAFKA_DIR/cluster.id" "$KAFKA_DIR/secured" "$KAFKA_DIR/acls.applied"
  say "deleted ${DATA_DIR#"$LADDER_ROOT"/}"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  topics) cmd_topics ;;
  reset) cmd_reset ;;
  *) echo "usage: $0 start|stop|status|topics|reset" >&2; exit 2 ;;
esac
