#!/usr/bin/env bash
# Create the execution environment build context in .cache/ee/context (no container engine
# needed): build the collection tarball from this checkout, then `ansible-builder create`.
# Build the image afterwards with podman or docker (see execution-environment.yml, docs/awx.md).
# Usage: tools/ee/build_context.sh [<venv-dir>] [<context-dir>]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-.venv}
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
context=${2:-$root/.cache/ee/context}
out="$root/.cache/ee"
mkdir -p "$out"
rm -f "$out"/alfred-tee_kms-*.tar.gz "$out/alfred-tee_kms.tar.gz"

# Build from the files a checkout has (tracked and new, not ignored), like tests/sanity/run.sh:
# caches in the working tree (.ansible/, .venv, artifacts/ ...) never reach the tarball.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src" 2>/dev/null || true)
test -f "$src/galaxy.yml" || { echo "build_context: could not copy the checkout of $root" >&2; exit 1; }
(cd "$src" && "$venv/bin/ansible-galaxy" collection build --force --output-path "$out" . >/dev/null)
# A fixed name, so execution-environment.yml does not change with every version bump.
mv "$out"/alfred-tee_kms-*.tar.gz "$out/alfred-tee_kms.tar.gz"

rm -rf "$context"
"$venv/bin/ansible-builder" create -f "$root/execution-environment.yml" -c "$context" --output-filename Containerfile -v 1
echo "EE build context: $context (build it with: podman build -f $context/Containerfile -t alfred-tee-kms-ee $context)"
