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

# The tarball as it is released (tools/build_collection.sh: the checkout's files, the generated
# changelog, galaxy.yml build_ignore), under a fixed name so that execution-environment.yml
# does not change with every version bump.
tarball=$("$root/tools/build_collection.sh" "$out" "$venv" | tail -n 1)
mv "$tarball" "$out/alfred-tee_kms.tar.gz"

rm -rf "$context"
"$venv/bin/ansible-builder" create -f "$root/execution-environment.yml" -c "$context" --output-filename Containerfile -v 1
echo "EE build context: $context (build it with: podman build -f $context/Containerfile -t alfred-tee-kms-ee $context)"
