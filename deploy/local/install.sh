#!/usr/bin/env bash
# Install the system packages the local platform needs, only those that are missing:
#   kcat (Kafka CLI client), prometheus (prometheus + promtool), postgresql (server + psql),
#   docker-compose (its `config` validates docker-compose.yml in the tests),
#   and, if absent, what the scripts themselves run on: Java 17 and Maven (Kafka jars),
#   python3, iproute2 (ss), curl.
# apt-get update runs only when something is missing. Package maintainer scripts are kept
# from starting daemons (a temporary /usr/sbin/policy-rc.d), and anything that is listening
# on Prometheus' 9090 (or node-exporter's 9100) afterwards but was not before is stopped:
# the project starts what it needs itself.
# Usage: deploy/local/install.sh            (LADDER_BENCH_TOOLS=1 adds wrk, hey and perf for `make bench`)
set -euo pipefail
LOG_PREFIX="install"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_postgres() {
  command -v pg_ctlcluster >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 &&
    command -v pg_isready >/dev/null 2>&1 && compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || missing+=(prometheus)
have_postgres || missing+=(postgresql)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # the local CA and broker certificate
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
# The ladder page's browser test drives Debian's Chromium (Playwright with executable_path).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Tests validate docker-compose.yml with a real Compose parser (no Docker engine needed).
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [[ "${LADDER_BENCH_TOOLS:-0}" == 1 ]]; then
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v hey >/dev/null 2>&1 || missing+=(hey)
  command -v perf >/dev/null 2>&1 || missing+=(linux-perf) # the machine's CPU split in `--profile`
fi

if ((${#missing[@]} == 0)); then
  say "all system packages present (kcat, prometheus, postgresql, java, mvn, docker-compose)"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "no apt-get: install kcat, prometheus, postgresql yourself (missing: ${missing[*]})"
[[ "$(id -u)" == 0 ]] || die "installing ${missing[*]} needs root (apt-get); run as root or install them yourself"

daemon_ports=(9090 9100)
before=()
for p in "${daemon_ports[@]}"; do
  if port_listening "$p"; then before+=("$p"); fi
done

# Keep maintainer scripts from starting services (no systemd here; invoke-rc.d honours this).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\n# temporary, from ladder deploy/local/install.sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=1
fi
cleanup() { ((made_policy)) && rm -f "$policy"; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
say "installing: ${missing[*]}"
apt-get update -qq || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
  die "apt-get install ${missing[*]} failed"

# Nothing of ours should be left listening on 9090/9100 because of the install.
for p in "${daemon_ports[@]}"; do
  [[ " ${before[*]} " == *" $p "* ]] && continue
  port_listening "$p" || continue
  for pid in $(port_pids "$p"); do
    cmd="$(pid_cmdline "$pid")"
    if [[ "$cmd" == *prometheus* ]]; then
      warn "the package started $cmd(pid $pid) on port $p; stopping it"
      stop_pid "$pid" 15 "$cmd" || true
    fi
  done
  port_listening "$p" && warn "port $p is now in use by $(describe_port_owner "$p")"
done

still=()
command -v kcat >/dev/null 2>&1 || still+=(kcat)
command -v promtool >/dev/null 2>&1 || still+=(promtool)
have_postgres || still+=(postgresql)
command -v java >/dev/null 2>&1 || still+=(java)
command -v mvn >/dev/null 2>&1 || still+=(mvn)
((${#still[@]} == 0)) || die "still missing after apt-get install: ${still[*]}"
say "installed: ${missing[*]}"
