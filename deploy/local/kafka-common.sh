# shellcheck shell=bash
# What the single node (kafka.sh) and the three-node cluster (cluster.sh) share: the jars,
# the tools, the broker settings both use, storage formatting, launching a node, topics.
# Sourced after lib.sh, never run.

KAFKA_LIBS="$VAR_DIR/kafka/libs" # filled by kafka-libs.sh, shared by every node
KAFKA_LOG4J_BROKER="$DEPLOY_LOCAL/kafka/log4j2.properties"
KAFKA_LOG4J_TOOLS="$DEPLOY_LOCAL/kafka/tools-log4j2.properties"

kafka_tool() { # kafka_tool MAINCLASS ARGS...  (quiet logging, small heap)
  java -Xmx256m -Dlog4j2.configurationFile="$KAFKA_LOG4J_TOOLS" -cp "$KAFKA_LIBS/*" "$@"
}

# A secured node sets KAFKA_KCAT_CONFIG (kcat's login) and KAFKA_TOOLS_CONFIG (the Java
# tools' --command-config); unset, both talk plaintext (the chaos cluster).
kafka_kcat() { # kafka_kcat SECONDS BOOTSTRAP ARGS...
  local seconds="$1" bootstrap="$2"
  shift 2
  if [[ -n "${KAFKA_KCAT_CONFIG:-}" ]]; then
    timeout "$seconds" kcat -b "$bootstrap" -F "$KAFKA_KCAT_CONFIG" -q "$@"
  else
    timeout "$seconds" kcat -b "$bootstrap" "$@"
  fi
}

kafka_tools_login() { [[ -z "${KAFKA_TOOLS_CONFIG:-}" ]] || echo "--command-config=$KAFKA_TOOLS_CONFIG"; }

kafka_metadata_ok() { kafka_kcat 10 "$1" -L -m 5 >/dev/null 2>&1; } # BOOTSTRAP

# Broker settings every local node has (appended to a node's generated config).
kafka_common_config() { # kafka_common_config PARTITIONS REPLICATION MIN_ISR
  cat <<EOC
num.partitions=$1
default.replication.factor=$2
min.insync.replicas=$3
auto.create.topics.enable=false
# internal topics: replicated like the rest, few partitions (quick first group/transaction use)
offsets.topic.replication.factor=$2
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$2
transaction.state.log.min.isr=$3
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=$2
share.coordinator.state.topic.min.isr=$3
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
# Records up to 4 MiB (the default is 1 MiB): a dead letter keeps a rejected record verbatim
# plus its reason, so it must fit what the commands topic accepted (tests send a 2 MB key).
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
EOC
}

# Format DATA_DIR once (a meta.properties says it is done); FLAGS go to StorageTool format.
kafka_format_once() { # kafka_format_once CONF DATA_DIR CLUSTER_ID [FLAGS...]
  local conf="$1" data="$2" id="$3" out
  shift 3
  [[ -f "$data/meta.properties" ]] && return 0
  if ! out="$(kafka_tool kafka.tools.StorageTool format -t "$id" -c "$conf" "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "formatting $data failed (see above)"
  fi
  say "formatted storage ${data#"$LADDER_ROOT"/} (cluster id $id)"
}

kafka_random_uuid() {
  local uuid
  uuid="$(kafka_tool kafka.tools.StorageTool random-uuid)" || die "StorageTool random-uuid failed"
  uuid="$(tail -n1 <<<"$uuid" | tr -d '[:space:]')"
  [[ -n "$uuid" ]] || die "StorageTool random-uuid printed nothing"
  echo "$uuid"
}

# Start one node in the background (own session, so a stop reaches its process group); prints its pid.
kafka_launch() { # kafka_launch CONF LOGFILE HEAP_OPTS
  local conf="$1" log="$2" heap="$3"
  [[ -f "$log" ]] && mv -f "$log" "$log.1"
  # shellcheck disable=SC2086  # heap is a list of JVM flags
  setsid nohup java $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J_BROKER" -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$conf" >>"$log" 2>&1 </dev/null 9>&- &
  echo $!
}

# "name partitions" per existing topic
kafka_existing_topics() { # kafka_existing_topics BOOTSTRAP
  kafka_kcat 15 "$1" -L -J -m 10 2>/dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin).get("topics", []):
    if not t.get("error"):
        print(t["topic"], len(t.get("partitions", [])))
'
}

# Create the topics that are missing and wait until all are visible in metadata.
# retention.ms per topic (shared/topics.py RETENTION_MS says the same, a test holds them equal):
# the events topic is the truth, kept for ever so a rebuild or a new consumer group is exact;
# commands a week, dead letters two weeks (the window to redrive them); both shorter than the
# services' dedup retention (LADDER_RETENTION_DAYS, 30 days).
topic_retention_ms() {
  case "$1" in
    *support.ticket-events) echo -1 ;;
    *support.ticket-commands) echo 604800000 ;;
    *support.dead-letter) echo 1209600000 ;;
    *) echo "" ;;
  esac
}

kafka_ensure_topics() { # kafka_ensure_topics BOOTSTRAP PARTITIONS REPLICATION "TOPICS" [TopicCommand flags...]
  local bootstrap="$1" partitions="$2" replication="$3" topics="$4" have t n created=0 out
  shift 4
  have="$(kafka_existing_topics "$bootstrap")" || die "could not list topics on $bootstrap"
  for t in $topics; do
    n="$(awk -v t="$t" '$1 == t { print $2 }' <<<"$have")"
    if [[ -n "$n" ]]; then
      ((n >= partitions)) || warn "topic $t has $n partitions (< $partitions); left as is"
      continue
    fi
    local retention config=()
    retention="$(topic_retention_ms "$t")"
    [[ -n "$retention" ]] && config=(--config "retention.ms=$retention")
    # shellcheck disable=SC2046  # no login: no argument
    if ! out="$(kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" $(kafka_tools_login) \
      --create --if-not-exists --topic "$t" --partitions "$partitions" --replication-factor "$replication" \
      "${config[@]}" "$@" 2>&1)"; then
      printf '%s\n' "$out" >&2
      die "could not create topic $t"
    fi
    created=$((created + 1))
  done
  local deadline=$(($(now_s) + 30)) missing
  while :; do
    have="$(kafka_existing_topics "$bootstrap" || true)"
    missing=""
    for t in $topics; do
      awk -v t="$t" '$1 == t { f = 1 } END { exit !f }' <<<"$have" || missing+=" $t"
    done
    [[ -z "$missing" ]] && break
    (($(now_s) >= deadline)) && die "topics not visible after 30s:$missing"
    sleep 0.5
  done
  if ((created == 0)); then
    say "topics present: $topics"
  else
    say "created $created topic(s); present: $topics"
  fi
}

kafka_count_topics() { # kafka_count_topics BOOTSTRAP "TOPICS" -> how many of them exist
  local have t n=0
  have="$(kafka_existing_topics "$1" || true)"
  for t in $2; do
    awk -v t="$t" '$1 == t { f = 1 } END { exit !f }' <<<"$have" && n=$((n + 1))
  done
  echo "$n"
}
