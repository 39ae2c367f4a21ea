#!/usr/bin/env bash
# Build the collection tarball as it is released, from the files git tracks in this checkout
# (staged ones included; as they are in the working tree). Untracked files never reach it: an
# operator's key store, inventory or trust file beside the playbooks must not ship. The
# changelog is generated:
# in a scratch copy laid out as ansible_collections/alfred/tee_kms, antsibull-changelog turns
# the fragments into the release of galaxy.yml's version and renders CHANGELOG.rst, then
# `ansible-galaxy collection build` (galaxy.yml build_ignore decides what ships). The
# repository keeps its fragments until a release is committed. Prints the tarball's path.
# Usage: tools/build_collection.sh <output-dir> [<venv-dir>]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: tools/build_collection.sh <output-dir> [<venv-dir>]}
venv=${2:-.venv}
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
mkdir -p "$out"
out=$(cd "$out" && pwd)

base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
src="$base/ansible_collections/alfred/tee_kms"
mkdir -p "$src" "$base/home"
(cd "$root" && git ls-files -c -z \
  | while IFS= read -r -d '' file; do
      if [ -e "$file" ]; then cp --parents -t "$src" "$file"; fi
    done)
test -f "$src/galaxy.yml" || { echo "build_collection: could not copy the checkout of $root" >&2; exit 1; }
# antsibull-changelog lists the plugins with ansible-doc: the copy's, not an installed one.
: > "$base/ansible.cfg"
export ANSIBLE_CONFIG="$base/ansible.cfg" HOME="$base/home" PATH="$venv/bin:$PATH"
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
cd "$src"
version=$("$venv/bin/python" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
"$venv/bin/antsibull-changelog" lint
"$venv/bin/antsibull-changelog" release --version "$version" --date "$(date -u +%F)"
# A changelog without this version's entry would ship silently empty: refuse instead.
grep -q "^v$version" CHANGELOG.rst || { echo "build_collection: CHANGELOG.rst has no entry for $version" >&2; exit 1; }
"$venv/bin/ansible-galaxy" collection build --force --output-path "$out" . >/dev/null
echo "$out/alfred-tee_kms-$version.tar.gz"
