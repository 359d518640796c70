#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/_browser.ts) when none is there.
# Playwright cannot download a browser build on our machines, so the tests launch this one.
# Never fails the caller: when it cannot install, it says so and exits 0, and the browser
# tests report the missing browser themselves (skipped locally, failed under CI=true).
set -uo pipefail

found() {
  if [ -n "${CHROMIUM_PATH:-}" ]; then
    [ -x "$CHROMIUM_PATH" ] && echo "$CHROMIUM_PATH"
    return
  fi
  command -v chromium || command -v chromium-browser ||
    { [ -x /usr/bin/chromium ] && echo /usr/bin/chromium; }
}

if path=$(found); then
  echo "Chromium: $path ($("$path" --version 2>/dev/null | head -n 1 || true))"
  exit 0
fi
if [ -n "${CHROMIUM_PATH:-}" ]; then
  echo "WARNING: CHROMIUM_PATH=$CHROMIUM_PATH is not executable; not installing another" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "WARNING: Chromium not found and not root: run apt-get install -y chromium as root" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "WARNING: Chromium not found and no apt-get here: install Chromium, or set CHROMIUM_PATH" >&2
  exit 0
fi

echo "installing Chromium (apt-get install -y chromium fonts-liberation; takes a few minutes)"
started=$SECONDS
export DEBIAN_FRONTEND=noninteractive
# Recommends (printing, udev, notification daemon, …) are of no use headless, and they double
# the install; fonts-liberation is the one a screenshot needs, for legible text.
apt=(-o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if apt-get -o DPkg::Lock::Timeout=300 -qq update >"$log" 2>&1 &&
  apt-get "${apt[@]}" install chromium fonts-liberation >>"$log" 2>&1; then
  path=$(found) || path="(not on PATH)"
  echo "Chromium installed in $((SECONDS - started)) s: $path"
else
  echo "WARNING: installing Chromium failed after $((SECONDS - started)) s; the last lines:" >&2
  tail -n 20 "$log" >&2
fi
exit 0
