#!/usr/bin/env bash
# Debian packages the tests talk to: a real Prometheus (+ promtool) and kubectl (JSONPath oracle).
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package may start a system instance on :9090; tests run their own.
pkill -x prometheus 2>/dev/null || true
