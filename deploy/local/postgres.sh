#!/usr/bin/env bash
# Local PostgreSQL for Ladder.
#
# Usage: deploy/local/postgres.sh start|stop|status|restart [fast|immediate]|service-role NAME [SCHEMA]|drop-service-role NAME
#   start   If DATABASE_URL points at a non-local host, or at a server that already accepts
#           connections, only check that we can log in with it. (Without DATABASE_URL, a
#           running local Debian cluster that lacks the role/database gets them.) Otherwise use Debian's
#           PostgreSQL: install it if missing, create a cluster on the port if there is none,
#           start it (recording var/run/postgres.started-by-us), wait for pg_isready, and create
#           the role (LOGIN CREATEDB, with the URL's password) and database if missing. A local
#           Debian cluster serves TLS with a certificate from the local CA (var/secrets/postgres.crt,
#           signed by var/secrets/ca.crt: sslmode=verify-full&sslrootcert=var/secrets/ca.crt works).
#           A role that exists keeps its password: the script never resets one.
#   stop    Stop the cluster only if var/run/postgres.started-by-us says we started it.
#   status  one line; exit 0 if it accepts connections, 3 otherwise
#   service-role NAME [SCHEMA]   the service's own login: role ladder_NAME (password in
#           var/secrets/postgres-NAME.password, made with the role; an existing role's password
#           is never reset) owning schema SCHEMA (default NAME) and everything in it, with no
#           right on any other schema nor to create schemas. The URL's user (the admin: tests,
#           reset, CLI) becomes a member, so it can read and drop the schema. Prints the
#           service's DATABASE_URL (no password; DATABASE_PASSWORD_FILE carries it). Exit 3 when
#           roles cannot be managed here (not a local Debian cluster, or not root).
#   drop-service-role NAME   drop role ladder_NAME, what it owns, and its password file
#           (platform.sh down-test does it for the roles made while `make test` ran).
#   restart Restart the cluster we started (the chaos suite's fault): "fast" (default) ends
#           sessions and checkpoints, "immediate" is a crash (recovery on start).
#
# Environment: DATABASE_URL (postgresql://ladder:ladder@localhost:5432/ladder); user,
# password, database and port are taken from it. PG_START_TIMEOUT (30). PG_CLUSTER_NAME:
# the name of a cluster this script creates (default main, or ladder if main exists).
set -euo pipefail
LOG_PREFIX="postgres"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEFAULT_URL="postgresql://ladder:ladder@localhost:5432/ladder"
URL="${DATABASE_URL:-$DEFAULT_URL}"
URL_GIVEN=0
[[ -n "${DATABASE_URL:-}" ]] && URL_GIVEN=1
PG_START_TIMEOUT="${PG_START_TIMEOUT:-30}"
is_uint "$PG_START_TIMEOUT" || die "PG_START_TIMEOUT must be seconds, got '$PG_START_TIMEOUT'"
MARKER="$RUN_DIR/postgres.started-by-us"
PG_CLUSTER_NAME="${PG_CLUSTER_NAME:-}"

# Parse the URL (tolerates SQLAlchemy-style postgresql+asyncpg://) into shell variables.
parsed="$(python3 - "$URL" <<'PY'
import shlex, sys
from urllib.parse import urlsplit, parse_qs, unquote
url = sys.argv[1]
try:
    u = urlsplit(url)
    scheme = u.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"scheme must be postgresql://, got {u.scheme or 'none'}://")
    q = parse_qs(u.query)
    host = u.hostname or (q.get("host") or [""])[0] or "localhost"
    port = u.port or int((q.get("port") or ["5432"])[0])
    out = {
        "PG_HOST": host, "PG_PORT": str(port),
        "PG_USER": unquote(u.username or "ladder"), "PG_PASS": unquote(u.password or ""),
        "PG_DB": unquote(u.path.lstrip("/")) or "ladder",
        "PG_LIBPQ_URL": url.replace(u.scheme + "://", scheme + "://", 1),
    }
except ValueError as e:
    print(f"echo {shlex.quote('postgres: error: bad DATABASE_URL: ' + str(e))} >&2; exit 1")
    sys.exit(0)
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
PY
)" || die "could not parse DATABASE_URL"
eval "$parsed"
# One marker per port: a second cluster (the chaos suite's) is stopped apart from the first.
[[ "$PG_PORT" == 5432 ]] || MARKER="$RUN_DIR/postgres-$PG_PORT.started-by-us"

case "$PG_HOST" in
  localhost | 127.0.0.1 | ::1 | /*) PG_LOCAL=1 ;;
  *) PG_LOCAL=0 ;;
esac
WHERE="$PG_HOST:$PG_PORT"

accepting() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1; }

login_check() { # prints psql's error on failure (stderr captured, stdout dropped)
  # shellcheck disable=SC2069
  PGCONNECT_TIMEOUT=5 psql "$PG_LIBPQ_URL" -X -q -tA -v ON_ERROR_STOP=1 -c 'select 1' 2>&1 >/dev/null
}

# Debian cluster on PG_PORT: prints "version name status" or nothing
cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2, $4; exit }'
}

psql_admin() { # run psql as the postgres superuser over the local socket
  (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
}

provision() { # create role and database from the URL if missing
  # The database compares text byte by byte (LC_COLLATE C): every key is an id, and a locale's
  # collation (C.UTF-8 included, before PostgreSQL 17) compares through strcoll (README: PostgreSQL).
  [[ -n "$PG_PASS" ]] || die "DATABASE_URL has no password; the local cluster needs one for TCP logins"
  psql_admin -v u="$PG_USER" -v p="$PG_PASS" -v d="$PG_DB" <<'SQL' >/dev/null || die "could not create role/database as the postgres user"
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING ''UTF8'' LC_COLLATE ''C''', :'d', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SQL
  # The admin may read and reset the statement statistics (`make bench BENCH_ARGS=--profile`).
  psql_admin -d "$PG_DB" -v u="$PG_USER" <<'SQL' >/dev/null || die "could not set up pg_stat_statements as the postgres user"
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SELECT format('GRANT pg_read_all_stats TO %I', :'u') \gexec
SELECT format('GRANT EXECUTE ON FUNCTION pg_stat_statements_reset TO %I', :'u') \gexec
SQL
  local err
  if ! err="$(login_check)"; then
    # The role existed with another password: never reset it (someone else's login may depend on it).
    die "cannot log in as $PG_USER to $PG_DB at $WHERE ($(head -n1 <<<"$err")); the role exists and its password is never reset: put it in DATABASE_URL"
  fi
}

SECRETS="$VAR_DIR/secrets"

# The local Debian cluster serves TLS with a certificate from the local CA (copied into the
# cluster's configuration directory, readable by the server only); reloaded when it changes.
ensure_tls() {
  local c ver name st conf current changed=0
  c="$(cluster_on_port)"
  [[ -n "$c" && "$EUID" == 0 ]] || return 0
  read -r ver name st <<<"$c"
  conf="/etc/postgresql/$ver/$name"
  [[ -d "$conf" ]] || return 0
  ensure_server_cert postgres
  if ! cmp -s "$SECRETS/postgres.crt" "$conf/ladder-server.crt"; then
    install -o postgres -g postgres -m 600 "$SECRETS/postgres.key" "$conf/ladder-server.key"
    install -o postgres -g postgres -m 644 "$SECRETS/postgres.crt" "$conf/ladder-server.crt"
    changed=1
  fi
  current="$(psql_admin -tA <<<"SELECT current_setting('ssl') || ' ' || current_setting('ssl_cert_file')")"
  if ((changed)) || [[ "$current" != "on $conf/ladder-server.crt" ]]; then
    psql_admin -v crt="$conf/ladder-server.crt" -v key="$conf/ladder-server.key" <<'SQL' >/dev/null ||
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = :'crt';
ALTER SYSTEM SET ssl_key_file = :'key';
SELECT pg_reload_conf();
SQL
      die "could not turn TLS on for cluster $ver/$name"
    say "TLS on for cluster $ver/$name with a certificate from the local CA (${SECRETS#"$LADDER_ROOT"/}/ca.crt)"
  fi
}

cmd_service_role() { # cmd_service_role NAME [SCHEMA]
  local svc="${1:-}" schema="${2:-${1:-}}" role file exists password url
  [[ "$svc" =~ ^[a-z][a-z0-9_]{0,40}$ ]] || die "service-role: bad service name '$svc'"
  [[ "$schema" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "service-role: bad schema name '$schema'"
  role="ladder_$svc"
  file="$SECRETS/postgres-$svc.password"
  if [[ "$PG_LOCAL" != 1 || "$EUID" != 0 || -z "$(cluster_on_port)" ]]; then
    say "roles per service are not managed at $WHERE (not a local Debian cluster run as root)" >&2
    exit 3
  fi
  take_lock postgres
  exists="$(psql_admin -tA -v r="$role" <<<"SELECT 1 FROM pg_roles WHERE rolname = :'r'")"
  if [[ -z "$exists" ]]; then
    [[ -s "$file" ]] || (umask 077 && mkdir -p "$SECRETS" && openssl rand -hex 24 >"$file") || die "could not write $file"
    password="$(<"$file")"
    [[ "$password" =~ ^[A-Za-z0-9._~-]+$ ]] || die "$file: use letters, digits and ._~- only"
    psql_admin -v r="$role" -v p="$password" <<'SQL' >/dev/null || die "could not create role $role"
SELECT format('CREATE ROLE %I LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', :'r', :'p') \gexec
SQL
    say "new role $role (password in ${file#"$LADDER_ROOT"/})" >&2
    # made during `make test` (platform.sh up-test): down-test drops it again, so a later
    # clone on this machine (whose var/secrets lacks the password) starts from nothing too
    [[ ! -f "$RUN_DIR/platform.test-started" ]] || echo "pgrole:$svc" >>"$RUN_DIR/platform.test-started"
  elif [[ ! -s "$file" ]]; then
    die "role $role exists but ${file#"$LADDER_ROOT"/} does not: write its password there (the script never resets a password)"
  fi
  psql_admin -d "$PG_DB" -v r="$role" -v s="$schema" -v admin="$PG_USER" <<'SQL' >/dev/null || die "could not give schema $schema to $role"
SELECT format('CREATE SCHEMA %I AUTHORIZATION %I', :'s', :'r')
 WHERE NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :'s') \gexec
-- A schema made before roles per service: hand it over, with everything in it (owned
-- sequences follow their table).
SELECT format('ALTER SCHEMA %I OWNER TO %I', :'s', :'r')
  FROM pg_namespace WHERE nspname = :'s' AND nspowner <> to_regrole(:'r') \gexec
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname, :'r')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :'s' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relowner <> to_regrole(:'r')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                   AND c.relkind = 'S' AND d.deptype IN ('a', 'i')) \gexec
SELECT format('GRANT %I TO %I', :'r', :'admin')
 WHERE :'admin' <> :'r' AND NOT pg_has_role(:'admin', :'r', 'MEMBER') \gexec
SQL
  url="postgresql://$role@$PG_HOST:$PG_PORT/$PG_DB"
  # shellcheck disable=SC2069
  PGPASSWORD="$(<"$file")" PGCONNECT_TIMEOUT=5 psql "$url" -X -q -tA -c 'select 1' 2>&1 >/dev/null ||
    die "cannot log in as $role with ${file#"$LADDER_ROOT"/}: the role exists and its password is never reset (put its password in the file)"
  [[ "$PG_LIBPQ_URL" != *\?* ]] || url+="?${PG_LIBPQ_URL#*\?}"
  echo "$url"
}

cmd_drop_service_role() { # cmd_drop_service_role NAME: the role, what it owns, its password file
  local svc="${1:-}" role
  [[ "$svc" =~ ^[a-z][a-z0-9_]{0,40}$ ]] || die "drop-service-role: bad service name '$svc'"
  [[ "$PG_LOCAL" == 1 && "$EUID" == 0 && -n "$(cluster_on_port)" ]] || exit 3
  role="ladder_$svc"
  take_lock postgres
  psql_admin -d "$PG_DB" -v r="$role" <<'SQL' >/dev/null || die "could not drop role $role"
SELECT format('DROP OWNED BY %I CASCADE', :'r') WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'r') \gexec
SELECT format('DROP ROLE %I', :'r') WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'r') \gexec
SQL
  rm -f "$SECRETS/postgres-$svc.password"
  say "dropped role $role"
}

ensure_debian_postgres() {
  if command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    return 0
  fi
  require_cmd apt-get "no apt-get: install postgresql yourself or set DATABASE_URL"
  say "installing postgresql with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null || die "apt-get install postgresql failed"
  command -v pg_ctlcluster >/dev/null 2>&1 || die "postgresql installed but pg_ctlcluster is still missing"
}

# What Ladder asks of its server (README "PostgreSQL"), set before the cluster starts: room for
# every batch's advisory locks (one per ticket, and per command id in intake), and
# pg_stat_statements, which `make bench BENCH_ARGS=--profile` reads.
server_settings() { # server_settings VERSION NAME
  pg_conftool "$1" "$2" set max_locks_per_transaction 512
  pg_conftool "$1" "$2" set shared_preload_libraries pg_stat_statements
}

cmd_start() {
  require_cmd pg_isready "install postgresql-client (or run deploy/local/install.sh)"
  require_cmd psql "install postgresql-client (or run deploy/local/install.sh)"
  take_lock postgres
  local err c ver name st
  if accepting; then
    if err="$(login_check)"; then
      [[ "$PG_LOCAL" != 1 ]] || ensure_tls
      say "ready at $WHERE (db $PG_DB, user $PG_USER, $([[ -f "$MARKER" ]] && echo "started by us" || echo "not started by us"))"
      return 0
    fi
    c="$(cluster_on_port)"
    # A DATABASE_URL of the user's own on a running server: only check it.
    if [[ "$URL_GIVEN" == 0 && "$PG_LOCAL" == 1 && -n "$c" ]]; then
      read -r ver name st <<<"$c"
      provision
      ensure_tls
      say "ready at $WHERE (cluster $ver/$name; created role/db as needed)"
      return 0
    fi
    die "server at $WHERE accepts connections but logging in as $PG_USER to $PG_DB fails: $(head -n1 <<<"$err")"
  fi
  if [[ "$PG_LOCAL" != 1 ]]; then
    die "DATABASE_URL points at $WHERE, which does not accept connections ($(pg_isready -h "$PG_HOST" -p "$PG_PORT" -t 3 2>&1 || true))"
  fi
  if port_listening "$PG_PORT"; then
    die "port $PG_PORT is in use by $(describe_port_owner "$PG_PORT"), which is not an answering PostgreSQL; free it or set DATABASE_URL"
  fi

  ensure_debian_postgres
  c="$(cluster_on_port)"
  if [[ -z "$c" ]]; then
    ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n1)"
    [[ -n "$ver" ]] || die "no PostgreSQL server version under /usr/lib/postgresql"
    name="${PG_CLUSTER_NAME:-main}"
    if [[ -z "$PG_CLUSTER_NAME" ]] && pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
      name=ladder
    fi
    say "creating cluster $ver/$name on port $PG_PORT ..."
    pg_createcluster "$ver" "$name" --port "$PG_PORT" >/dev/null 9>&- || die "pg_createcluster $ver $name --port $PG_PORT failed"
    c="$(cluster_on_port)"
    [[ -n "$c" ]] || die "cluster $ver/$name created but pg_lsclusters does not list it on port $PG_PORT"
  fi
  read -r ver name st <<<"$c"
  local t0
  t0=$(now_s)
  if [[ "$st" != online* ]]; then
    server_settings "$ver" "$name"
    # 9>&-: the server must not inherit our lock fd (it would hold the lock forever)
    pg_ctlcluster "$ver" "$name" start 9>&- || die "pg_ctlcluster $ver $name start failed (log: /var/log/postgresql/postgresql-$ver-$name.log)"
    echo "$ver $name" >"$MARKER"
  fi
  local deadline=$(($(now_s) + PG_START_TIMEOUT))
  until accepting; do
    (($(now_s) >= deadline)) && die "cluster $ver/$name not accepting connections on $WHERE after ${PG_START_TIMEOUT}s (log: /var/log/postgresql/postgresql-$ver-$name.log)"
    sleep 0.3
  done
  provision
  ensure_tls
  say "ready at $WHERE (cluster $ver/$name, $([[ -f "$MARKER" ]] && echo "started by us" || echo "not started by us") in $(($(now_s) - t0))s; db $PG_DB, user $PG_USER)"
}

cmd_stop() {
  take_lock postgres
  if [[ ! -f "$MARKER" ]]; then
    if accepting; then say "left running at $WHERE (not started by us)"; else say "not running"; fi
    return 0
  fi
  local ver name
  read -r ver name <"$MARKER"
  if pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n && $4 ~ /^online/ { f = 1 } END { exit !f }'; then
    pg_ctlcluster "$ver" "$name" stop -m fast || die "pg_ctlcluster $ver $name stop failed"
    say "stopped cluster $ver/$name"
  else
    say "cluster $ver/$name already stopped"
  fi
  rm -f "$MARKER"
}

cmd_restart() { # cmd_restart fast|immediate
  local mode="${1:-fast}" ver name
  [[ "$mode" == fast || "$mode" == immediate ]] || die "restart mode must be fast or immediate, got '$mode'"
  take_lock postgres
  [[ -f "$MARKER" ]] || die "not restarting the server at $WHERE: we did not start it"
  read -r ver name <"$MARKER"
  pg_ctlcluster "$ver" "$name" stop -m "$mode" 9>&- || die "pg_ctlcluster $ver $name stop -m $mode failed"
  pg_ctlcluster "$ver" "$name" start 9>&- || die "pg_ctlcluster $ver $name start failed"
  local deadline=$(($(now_s) + PG_START_TIMEOUT))
  until accepting; do
    (($(now_s) >= deadline)) && die "cluster $ver/$name not accepting connections after restart"
    sleep 0.2
  done
  say "restarted cluster $ver/$name ($mode)"
}

cmd_status() {
  local by=""
  [[ -f "$MARKER" ]] && by=", started by us"
  if accepting; then
    if login_check >/dev/null; then
      say "ready at $WHERE (db $PG_DB, user $PG_USER$by)"
    else
      say "accepting connections at $WHERE but login as $PG_USER to $PG_DB fails$by"
    fi
    return 0
  fi
  say "not accepting connections at $WHERE$by"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_restart "${2:-fast}" ;;
  service-role) cmd_service_role "${2:-}" "${3:-}" ;;
  drop-service-role) cmd_drop_service_role "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|restart [fast|immediate]|service-role NAME [SCHEMA]|drop-service-role NAME" >&2; exit 2 ;;
esac
