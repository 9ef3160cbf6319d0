#!/usr/bin/env bash
# Refresh the in-repository copy of the conformance vectors and Argo's doc templates
# (tests/data/vectors, tests/data/argo-templates) from the shared folder beside the
# repository, or from the folder given as the first argument. Review and commit the diff.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$repo/../shared}
for part in vectors argo-templates; do
  if [ ! -d "$src/$part" ]; then
    echo "refresh-vectors: $src/$part is not a directory" >&2
    exit 1
  fi
done
for part in vectors argo-templates; do
  rm -rf "$repo/tests/data/$part"
  mkdir -p "$repo/tests/data/$part"
  cp -R "$src/$part/." "$repo/tests/data/$part/"
done
echo "refreshed tests/data/vectors and tests/data/argo-templates from $src"
git -C "$repo" status --short -- tests/data
