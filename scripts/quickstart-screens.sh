#!/usr/bin/env bash
# Captures the live view of `analysisd run` in a real terminal (tmux) for docs/quickstart.md:
# a passing, a failing and an erroring metric, against `analysisd demo --keep-running`.
# Prints the three screens; paste them into the page. Stops only what it started, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v tmux >/dev/null || { echo "needs tmux (apt-get install tmux)" >&2; exit 1; }
work=$(mktemp -d)
socket="$work/tmux.sock"
analysisd demo --keep-running --env-file "$work/demo.env" >"$work/demo.log" 2>&1 &
demo_pid=$!
cleanup() {
  tmux -S "$socket" kill-server 2>/dev/null || :
  kill "$demo_pid" 2>/dev/null || :
  wait "$demo_pid" 2>/dev/null || :
  rm -rf "$work"
}
trap cleanup EXIT
until [ -s "$work/demo.env" ]; do
  kill -0 "$demo_pid" || { cat "$work/demo.log" >&2; exit 1; }
  sleep 0.5
done
. "$work/demo.env"
# One session that outlives the others keeps the tmux server up between screens.
tmux -S "$socket" new-session -d -s keep "sleep 600"
screen() {  # screen TITLE UNTIL-TEXT COMMAND...: capture once UNTIL-TEXT is on the screen
  local title=$1 until=$2
  shift 2
  tmux -S "$socket" new-session -d -x 100 -y 14 -s "$title" "$* -o none; echo \"exit \$?\"; sleep 600"
  for _ in $(seq 1 120); do
    tmux -S "$socket" capture-pane -p -t "$title" | grep -qF -- "$until" && break
    sleep 0.25
  done
  echo "\$ ${*//$PROMETHEUS_ADDRESS/\$PROMETHEUS_ADDRESS} -o none"
  tmux -S "$socket" capture-pane -p -t "$title" | sed -e 's/[[:space:]]*$//' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
  echo
  tmux -S "$socket" kill-session -t "$title"
}
args="--arg app=checkout --arg interval=2s --arg count=3"
screen passing 'exit ' analysisd run examples/http-success-rate.yaml \
  --arg prometheus-address="$PROMETHEUS_ADDRESS" $args --arg version=good
screen failing 'exit ' analysisd run examples/http-success-rate.yaml \
  --arg prometheus-address="$PROMETHEUS_ADDRESS" $args --arg version=bad
screen erroring '└ Error' analysisd run examples/http-success-rate.yaml \
  --arg prometheus-address=http://127.0.0.1:9 $args --arg version=good
