#!/usr/bin/env bash
# Java interop suite (issue 15, item 3; issue 16: ZooKeeper): proves that Java services use config-service unchanged.
#
#   bash interop/java/run.sh          from anywhere; exit 0 only when every test passed
#
# It starts OUR service itself (`deno run -A main.ts` from the repo root) on a free port of
# 18700-18799 with a temporary DATA_DIR and FLAGS_FILE=src/test/resources/flags.json (a copy),
# and no UNLEASH_URL. When the local stack's variables are set (CI evals `scripts/stack.sh env`
# first) or the stack is up, the service runs on it: PostgreSQL (a fresh database
# config_interop_java_<id>, dropped at the end, when psql is there), Redis, ZooKeeper (its own
# base path) and Kafka; otherwise on the embedded defaults (SQLite in DATA_DIR). INTEROP_EMBEDDED=1
# forces the embedded defaults. A second, secured instance (embedded defaults, API_TOKENS with
# random tokens for admin, config:read and config:read+secrets:read) serves the authentication
# tests; its URL and tokens go to Maven as system properties too.
#
# Then `mvn test` in interop/java (offline when ~/.m2 has everything, else online; -T1, one fork)
# with -Dconfigservice.url=<the service>. The tests (src/test/java/interop/):
#   SpringConfigServerParityTest  a real Spring Cloud Config Server (native) vs our /config-server
#   SpringBootClientTest          a Spring Boot app with spring.config.import=configserver:
#   SecuredConfigServerTest       Bearer / Basic tokens, secrets left out, a Boot client with a password
#   JdkHttpClientTest             HttpClient.newHttpClient() (h2c upgrade) POSTs
#   OfrepProviderTest             the OpenFeature Java SDK's OFREP provider vs our REST evaluate
# and, only when the service runs on the stack's ZooKeeper (skipped on the embedded defaults),
# ZooKeeper two-way interop (issue 16):
#   RegistryHealthInteropTest        Curator's ServiceProvider and Spring Cloud LoadBalancer never
#                                    pick a REST-registered unhealthy instance, and pick it once healthy
#   SpringZookeeperRegistrationTest  a Spring Cloud Zookeeper app's own registration is listed
#                                    (source "zookeeper"), probed, discovered, 409 on deregister, removed
#   SpringDiscoversRestServiceTest   a Spring app discovers a REST-registered service and calls it
#                                    through a @LoadBalanced RestClient
# For those the main service probes instance health every 2 s (health_interval below) and Maven
# gets -Dzookeeper.hosts, -Dzookeeper.basepath and -Dinterop.health.interval (empty without ZooKeeper).
# Last line: `interop-java: N passed, N failed, N skipped`. Knobs: MAVEN_ARGS (extra mvn
# arguments, e.g. -Dtest=OfrepProviderTest), INTEROP_KEEP=1 (keep the temp dir and service log).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$HERE/../.." && pwd -P)"
started=$SECONDS
log() { printf '[interop-java] %s\n' "$*"; }

# A JDK 17+ (javac, not only a JRE) and Maven; on Debian as root, installed when missing.
if ! command -v javac >/dev/null || ! command -v mvn >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing a JDK and Maven (apt-get)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
  fi
fi
command -v javac >/dev/null || { echo "FAILED: javac is not installed (a JDK 17+ is needed)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "FAILED: mvn is not installed (Maven 3.8+ is needed)" >&2; exit 1; }
command -v deno >/dev/null || { echo "FAILED: deno is not installed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/interop-java.XXXXXX")
service_pid=""
auth_pid=""
db_name=""
stop() { # PID: TERM, up to 10 s, then KILL
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop "$service_pid"
  stop "$auth_pid"
  if [ -n "$db_name" ]; then
    PGPASSWORD="$pg_pass" psql -q -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" \
      -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ "${INTEROP_KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the backends: the local stack when its variables are set or it is up, else embedded
if [ "${INTEROP_EMBEDDED:-0}" = 1 ]; then
  unset DATABASE_URL REDIS_HOST ZOOKEEPER_HOSTS KAFKA_BOOTSTRAP_SERVERS
elif [ -z "${DATABASE_URL:-}" ] && bash "$ROOT/scripts/stack.sh" status >/dev/null 2>&1; then
  eval "$(bash "$ROOT/scripts/stack.sh" env 2>/dev/null)"
fi
# Flags come from our file, never from Unleash.
unset UNLEASH_URL UNLEASH_API_TOKEN UNLEASH_CLIENT_TOKENS UNLEASH_FRONTEND_TOKENS API_TOKENS API_TOKENS_FILE
id="$(date +%s)_$$"
if [ -n "${DATABASE_URL:-}" ]; then
  # A database of our own: the parity tests compare whole global scopes, which other suites'
  # entries in a shared database would change.
  # postgres://user:password@host:port/database (no percent-encoded characters: the stack's own URL)
  re='^postgres(ql)?(\+asyncpg)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:([0-9]+))?/([^?]+)'
  if command -v psql >/dev/null 2>&1 && [[ "$DATABASE_URL" =~ $re ]]; then
    pg_user=${BASH_REMATCH[3]} pg_pass=${BASH_REMATCH[5]} pg_host=${BASH_REMATCH[6]}
    pg_port=${BASH_REMATCH[8]:-5432} pg_db=${BASH_REMATCH[9]}
    db_name="config_interop_java_$id"
    if PGPASSWORD="$pg_pass" psql -q -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" \
      -c "CREATE DATABASE $db_name" >/dev/null 2>"$tmp/psql.err"; then
      export DATABASE_URL="postgres://$pg_user${pg_pass:+:$pg_pass}@$pg_host:$pg_port/$db_name"
    else
      log "could not create a database ($(head -c 300 "$tmp/psql.err")); using embedded SQLite"
      db_name=""
      unset DATABASE_URL
    fi
  else
    log "psql not found (or DATABASE_URL not postgres://user:password@host:port/db): using embedded SQLite"
    unset DATABASE_URL
  fi
fi
export ZOOKEEPER_BASE_PATH="/config-service-interop-java"
# The main service's health-check interval (s), also given to the tests that measure against it.
health_interval=2

# --- two services: the main one (on the stack when there is one, open: no API tokens), and a
# secured one (embedded defaults, API_TOKENS) for the Spring Cloud Config authentication tests
free_port() {
  local p
  for p in $(seq 18700 18799 | shuf); do
    [ "$p" = "${1:-}" ] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "FAILED: no free port in 18700-18799" >&2
  return 1
}
port=$(free_port)
auth_port=$(free_port "$port")
url="http://127.0.0.1:$port"
auth_url="http://127.0.0.1:$auth_port"
rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
tok_admin="adm$(rand 16)" tok_reader="rdr$(rand 16)" tok_secrets="sec$(rand 16)"

# start_service NAME PORT: deno run -A main.ts from the repo root, its own DATA_DIR and FLAGS_FILE
start_service() {
  local name=$1 p=$2
  mkdir -p "$tmp/$name/data"
  cp "$HERE/src/test/resources/flags.json" "$tmp/$name/flags.json"
  (
    cd "$ROOT"
    export SERVICE_HOST=127.0.0.1 SERVICE_PORT="$p" DATA_DIR="$tmp/$name/data" FLAGS_FILE="$tmp/$name/flags.json"
    export SERVICE_INSTANCE_ID="interop-java-$name-$id" SERVICE_ADVERTISE_URL="http://127.0.0.1:$p"
    export LOG_LEVEL="${INTEROP_LOG_LEVEL:-WARNING}"
    if [ "$name" = main ]; then
      # Health flips must reach ZooKeeper fast (the issue 16 tests time them against the
      # interval): probe every $health_interval s, and no retries, so that a failing round settles
      # "unhealthy" at once instead of after 1+2+4 s of backed-off retries that also delay the
      # next round; each round then reflects what /health answers right now.
      export SERVICE_HEALTH_CHECK_INTERVAL="$health_interval" HEALTH_CHECK_MAX_RETRIES=0
    fi
    if [ "$name" = secured ]; then
      unset DATABASE_URL REDIS_HOST ZOOKEEPER_HOSTS KAFKA_BOOTSTRAP_SERVERS
      export API_TOKENS="interop-admin:$tok_admin:admin;interop-reader:$tok_reader:config:read;interop-secrets:$tok_secrets:config:read,secrets:read"
      export AUTH_FAILURES_PER_MINUTE=0 CONFIG_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)"
    fi
    exec deno run -A main.ts
  ) >"$tmp/$name/service.log" 2>&1 &
  echo $!
}

log "starting config-service on $url (database: $([ -n "${DATABASE_URL:-}" ] && echo "PostgreSQL $db_name" || echo "embedded SQLite"); redis: ${REDIS_HOST:-none}; zookeeper: ${ZOOKEEPER_HOSTS:-in-process}; kafka: ${KAFKA_BOOTSTRAP_SERVERS:-none}) and a secured one (API_TOKENS, embedded) on $auth_url"
service_pid=$(start_service main "$port")
auth_pid=$(start_service secured "$auth_port")

wait_ready() { # NAME PID URL
  local _
  for _ in $(seq 1 240); do
    kill -0 "$2" 2>/dev/null || break
    curl -sf -o /dev/null --max-time 2 "$3/ready" && return 0
    sleep 0.25
  done
  echo "FAILED: config-service ($1) did not become ready on $3; the last lines of its log:" >&2
  tail -n 40 "$tmp/$1/service.log" | cut -c1-400 >&2
  return 1
}
wait_ready main "$service_pid" "$url"
wait_ready secured "$auth_pid" "$auth_url"
log "config-service ready after $((SECONDS - started)) s"

# --- the suite: offline when the local repository has everything, else online
cd "$HERE"
mvn_args=(-B -T1 -Dstyle.color=never -Dconfigservice.url="$url" -Dinterop.service.port="$port"
  -Dconfigservice.secured.url="$auth_url" -Dinterop.secured.port="$auth_port" -Dconfigservice.token.admin="$tok_admin"
  -Dconfigservice.token.reader="$tok_reader" -Dconfigservice.token.secrets="$tok_secrets")
# The ZooKeeper interop tests (issue 16) need the ensemble the main service uses; without one
# (embedded run: the service's ZooKeeper is in-process) the properties are empty and they skip.
if [ -n "${ZOOKEEPER_HOSTS:-}" ]; then
  mvn_args+=(-Dzookeeper.hosts="$ZOOKEEPER_HOSTS" -Dzookeeper.basepath="$ZOOKEEPER_BASE_PATH"
    -Dinterop.health.interval="$health_interval")
else
  mvn_args+=(-Dzookeeper.hosts= -Dzookeeper.basepath= -Dinterop.health.interval=)
fi
# shellcheck disable=SC2206
extra=(${MAVEN_ARGS:-})
rm -rf target/surefire-reports
set +e
mvn -q -o "${mvn_args[@]}" "${extra[@]}" test >"$tmp/mvn.log" 2>&1
rc=$?
# Offline failed before any test ran (an artifact or plugin missing from ~/.m2): once online.
if [ "$rc" -ne 0 ] && ! ls target/surefire-reports/TEST-*.xml >/dev/null 2>&1; then
  log "the local Maven repository lacks artifacts: running online"
  mvn -q "${mvn_args[@]}" "${extra[@]}" test >"$tmp/mvn.log" 2>&1
  rc=$?
fi
set -e
sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" | grep -vE '^\s*$' | cut -c1-2000 | tail -n 400 || true

# --- the counts, from Surefire's reports (the <testsuite> element of each TEST-*.xml)
tests=0 failures=0 errors=0 skipped=0
for f in target/surefire-reports/TEST-*.xml; do
  [ -f "$f" ] || continue
  head=$(grep -m1 -o '<testsuite [^>]*>' "$f" || true)
  attr() { sed -nE "s/.* $1=\"([0-9]+)\".*/\1/p" <<<"$head"; }
  tests=$((tests + $(attr tests))) failures=$((failures + $(attr failures)))
  errors=$((errors + $(attr errors))) skipped=$((skipped + $(attr skipped)))
done
failed=$((failures + errors))
passed=$((tests - failed - skipped))
if [ "$rc" -ne 0 ]; then
  log "the services' last log lines:"
  tail -n 20 "$tmp/main/service.log" "$tmp/secured/service.log" | cut -c1-400
fi
echo "interop-java: $passed passed, $failed failed, $skipped skipped ($((SECONDS - started)) s)"
if [ "$rc" -ne 0 ]; then
  echo "FAILED: the Java interop suite (mvn exited $rc)" >&2
  exit 1
fi
if [ "$tests" -eq 0 ]; then
  echo "FAILED: the Java interop suite ran no test" >&2
  exit 1
fi
