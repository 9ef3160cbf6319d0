#!/usr/bin/env bash
# Runs the commands that open README.md, so CI proves them as written.
#   setup : the first command (set up and serve) — started, probed on /healthz, stopped
#   test  : the second command (the test suite)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t cmds < <(awk '/^```/{n++; next} n==1 {sub(/[[:space:]]+#.*/, ""); if (length($0)) print}' README.md)
setup_cmd=${cmds[0]}
test_cmd=${cmds[1]}
case "${1:-}" in
  setup)
    port=18080
    echo "+ $setup_cmd (PORT=$port)"
    log=$(mktemp)
    PORT=$port ANALYSISD_STORE="sqlite:///$(mktemp -d)/analysisd.db" setsid bash -c "$setup_cmd" >"$log" 2>&1 &
    pid=$!
    ok=0
    for _ in $(seq 1 240); do
      if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$ok" != 1 ]; then echo "set-up command did not serve /healthz:"; tail -50 "$log"; exit 1; fi
    echo "set-up command served /healthz"
    ;;
  test)
    echo "+ $test_cmd"
    bash -c "$test_cmd"
    ;;
  *) echo "usage: $0 setup|test" >&2; exit 2 ;;
esac
