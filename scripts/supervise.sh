#!/usr/bin/env bash
# supervise.sh NAME CMD...: runs CMD and starts it again when it exits without being asked to,
# the way systemd's Restart=on-failure or a container restart policy would. Each unexpected exit
# is written to the log (stdout) as a line starting "[supervise", which `.ci/run` reports.
#
# SIGTERM or SIGINT is passed on to CMD and ends the supervision once CMD has exited, so
# `stack.sh stop` (and the outage tests that stop a server on purpose) work as without it.
# Gives up, exiting 1, when CMD exits 3 times in a row within 15 s of being started.
set -u
name="$1"
shift
child=0
stopping=0
quick=0
trap 'stopping=1; ((child > 0)) && kill -TERM "$child" 2>/dev/null' TERM INT
trap '' HUP

# Own line even when CMD's last output did not end with a newline.
say() { printf '\n[supervise %s] %s\n' "$(date '+%F %T')" "$*"; }

while :; do
  started=$SECONDS
  "$@" &
  child=$!
  ((stopping)) && kill -TERM "$child" 2>/dev/null
  while :; do
    wait "$child"
    rc=$?
    # A trapped signal interrupts `wait` (status > 128) while CMD may still be running.
    kill -0 "$child" 2>/dev/null || break
  done
  ((stopping)) && exit 0
  if ((SECONDS - started < 15)); then quick=$((quick + 1)); else quick=0; fi
  if ((quick >= 3)); then
    say "$name exited (status $rc) $quick times in a row within 15 s of starting; giving up"
    exit 1
  fi
  say "$name exited unexpectedly (status $rc); starting it again"
  sleep 1
done
