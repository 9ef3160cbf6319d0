#!/usr/bin/env bash
# Debian packages the tests talk to: a real Prometheus (+ promtool), kubectl (JSONPath oracle),
# chromium (the judge report page), tmux (the live view of `analysisd run` on a terminal) and
# graphite-carbon + graphite-web (a real Graphite).
# Nothing is stopped here: the Debian package may start its own Prometheus service on :9090,
# but every test starts its own Prometheus on a free loopback port and stops only that one.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v chromium >/dev/null || need+=(chromium)
command -v tmux >/dev/null || need+=(tmux)
# A real Graphite for the graphite provider's tests (tests/rigs/graphite.py runs it under
# Debian's /usr/bin/python3 on loopback ports; the packages' own services are not used).
[ -x /usr/bin/carbon-cache ] || need+=(graphite-carbon)
[ -e /usr/lib/python3/dist-packages/graphite/wsgi.py ] || need+=(graphite-web)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install as root: apt-get install ${need[*]}" >&2; exit 1; }
    sudo=(sudo --preserve-env=DEBIAN_FRONTEND)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
