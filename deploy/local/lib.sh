# shellcheck shell=bash
# Shared helpers for the deploy/local/*.sh scripts. Sourced, never run.
# All runtime state lives under <repo>/var/ (git-ignored):
#   var/run/   pid files, "started by us" markers, locks
#   var/log/   logs of everything we start in the background
#   var/kafka/ jars (libs/), generated config, data (data/)

LADDER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC2034  # used by the sourcing scripts
DEPLOY_LOCAL="$LADDER_ROOT/deploy/local"
VAR_DIR="$LADDER_ROOT/var"
RUN_DIR="$VAR_DIR/run"
LOG_DIR="$VAR_DIR/log"

# Prefix for messages; each script sets its own.
LOG_PREFIX="${LOG_PREFIX:-ladder}"

die() { echo "$LOG_PREFIX: error: $*" >&2; exit 1; }
say() { echo "$LOG_PREFIX: $*"; }
warn() { echo "$LOG_PREFIX: warning: $*" >&2; }

ensure_var_dirs() { mkdir -p "$RUN_DIR" "$LOG_DIR"; }

require_cmd() { # require_cmd CMD HINT
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: $2"
}

# Take an exclusive lock for the rest of the calling script (fd 9).
take_lock() { # take_lock NAME
  ensure_var_dirs
  exec 9>"$RUN_DIR/$1.lock"
  flock -w 120 9 || die "could not get lock $RUN_DIR/$1.lock within 120s (another run in progress?)"
}

now_s() { date +%s; }

is_uint() { [[ "${1:-}" =~ ^[0-9]+$ ]]; }

check_port_var() { # check_port_var NAME VALUE
  if is_uint "$2" && (("$2" > 0 && "$2" < 65536)); then return 0; fi
  die "$1 must be a TCP port number (1-65535), got '$2'"
}

pid_alive() { # running and not a zombie
  is_uint "${1:-}" && kill -0 "$1" 2>/dev/null || return 1
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || true
  [[ "$st" != Z && "$st" != X ]]
}

pid_cmdline() { # the command line of PID with spaces, empty if gone
  if [[ -r "/proc/$1/cmdline" ]]; then tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; fi
}

pid_cmdline_has() { # pid_cmdline_has PID STRING
  pid_alive "$1" && [[ "$(pid_cmdline "$1")" == *"$2"* ]]
}

read_pidfile() { # prints the pid stored in FILE, or nothing
  local f="$1" p
  [[ -f "$f" ]] || return 0
  p="$(head -n1 "$f" 2>/dev/null | tr -d '[:space:]')"
  if is_uint "$p"; then echo "$p"; fi
}

port_listening() { # port_listening PORT  (any local address, IPv4 or IPv6)
  [[ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]]
}

port_pids() { # pids of processes listening on PORT (may be empty if not visible)
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true
}

describe_port_owner() { # "pid 123 (java ...)" or "unknown process"
  local p out=""
  for p in $(port_pids "$1"); do
    out+="pid $p ($(pid_cmdline "$p" | cut -c1-80 | sed 's/ *$//')) "
  done
  [[ -n "$out" ]] && echo "${out% }" || echo "an unknown process"
}

wait_port_free() { # wait_port_free PORT TIMEOUT_S -> 0 if free
  local deadline=$(($(now_s) + $2))
  while port_listening "$1"; do
    (($(now_s) >= deadline)) && return 1
    sleep 0.2
  done
}

# Stop PID gracefully: SIGTERM to its process group if it leads one (we start
# everything with setsid), else to the pid; after GRACE seconds SIGKILL.
stop_pid() { # stop_pid PID GRACE_S NAME
  local pid="$1" grace="$2" name="$3" target deadline
  pid_alive "$pid" || return 0
  target="$pid"
  [[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f3)" == "$pid" ]] && target="-$pid"
  kill -TERM -- "$target" 2>/dev/null || true
  deadline=$(($(now_s) + grace))
  while pid_alive "$pid"; do
    if (($(now_s) >= deadline)); then
      warn "$name (pid $pid) still running after ${grace}s, sending SIGKILL"
      kill -KILL -- "$target" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  local n=0
  while pid_alive "$pid"; do
    ((n++ > 50)) && { warn "$name (pid $pid) did not exit even after SIGKILL"; return 1; }
    sleep 0.1
  done
  return 0
}

# The local development CA (var/secrets/ca.key, ca.crt) that signs the broker's and the
# PostgreSQL server's certificates; made once, kept after (clients trust it by file).
ensure_local_ca() { # ensure_local_ca -> 0; prints "new" if it made one
  local secrets="$VAR_DIR/secrets"
  [[ -s "$secrets/ca.crt" ]] && return 0
  require_cmd openssl "install it (apt-get install openssl)"
  (umask 077 && mkdir -p "$secrets" && chmod 700 "$secrets" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=Ladder local development CA" \
      -keyout "$secrets/ca.key" -out "$secrets/ca.crt" 2>/dev/null) || die "could not make the local CA"
  echo new
}

# A server certificate for localhost / 127.0.0.1 signed by the local CA, kept while the CA
# verifies it: var/secrets/NAME.key and NAME.crt (clients check the host name against it).
ensure_server_cert() { # ensure_server_cert NAME
  local secrets="$VAR_DIR/secrets" name="$1"
  if [[ -s "$secrets/$name.crt" && -s "$secrets/$name.key" && -s "$secrets/ca.crt" ]] &&
    openssl verify -CAfile "$secrets/ca.crt" "$secrets/$name.crt" >/dev/null 2>&1; then
    return 0
  fi
  ensure_local_ca >/dev/null
  (umask 077 &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$secrets/$name.key" -out "$secrets/$name.csr" 2>/dev/null &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$secrets/$name.ext" &&
    openssl x509 -req -in "$secrets/$name.csr" -CA "$secrets/ca.crt" -CAkey "$secrets/ca.key" -CAcreateserial \
      -days 825 -extfile "$secrets/$name.ext" -out "$secrets/$name.crt" 2>/dev/null) ||
    die "could not make the $name certificate"
  rm -f "$secrets/$name.csr" "$secrets/$name.ext"
}
