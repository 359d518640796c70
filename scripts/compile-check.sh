#!/usr/bin/env bash
# Checks that `deno compile` would embed every actor worker module. Deno's `denort` runtime
# cannot be downloaded on our machines, so the deno binary stands in for it (DENORT_BIN):
# the output is not a runnable service, but the embedded-file list is the real one.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
list=$(NO_COLOR=1 DENORT_BIN="$(readlink -f "$(command -v deno)")" \
  deno compile -A --include actors --output "$out/config-service" main.ts 2>&1)
echo "$list" | sed -n '/Embedded Files/,$p'
fail=0
for w in actors/*_worker.ts; do
  # A folder embedded whole is listed as "actors/*"; otherwise each file is listed.
  if ! grep -qE "actors/\*|$(basename "$w")" <<<"$list"; then
    echo "MISSING from the binary: $w" >&2
    fail=1
  fi
done
grep -q "node_modules" <<<"$list" || { echo "MISSING: node_modules (Swagger UI / ReDoc assets)" >&2; fail=1; }
[ "$fail" -eq 0 ] && echo "compile-check: every actor worker and the npm assets are embedded"
exit "$fail"
