#!/usr/bin/env bash
# Lint the collection's documentation with antsibull-docs (plugin DOCUMENTATION/EXAMPLES/
# RETURN incl. markup and M()/O()/RV() references, role argument specs, docs config and
# links) on a copy of the collection laid out as ansible_collections/alfred/tee_kms, which
# antsibull-docs requires; then lint the changelog fragments and render a release from them
# in that copy (the repository keeps its fragments).
# Usage: tests/docs/run_docs_lint.sh [<venv-dir>]   (default .venv)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-.venv}
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
# Outside the repository: a copy under it (e.g. .cache/) is linted without its plugins being
# read (no error is ever reported there, even for unparsable DOCUMENTATION).
base=$(mktemp -d "${TMPDIR:-/tmp}/tee_kms-docs-lint.XXXXXX")
trap 'rm -rf "$base"' EXIT
work="$base/ansible_collections/alfred/tee_kms"

mkdir -p "$work"
# Tracked files plus new ones not ignored, less the helper programs galaxy.yml's
# build_ignore keeps out of the built collection (as tests/sanity/run.sh does).
(cd "$root" && git ls-files -co --exclude-standard -z -- . ":!tools" ":!benchmarks" \
  | while IFS= read -r -d '' file; do
      if [ -e "$file" ]; then cp --parents -t "$work" "$file"; fi
    done)
# Run from outside the collection with an empty ansible.cfg and home: the collection's own
# ansible.cfg (collections_path = ./.collections) or a copy of the collection in
# ~/.ansible/collections would make ansible-doc read other files than these, and the lint
# would pass without having read the plugins.
mkdir -p "$base/home" && : > "$base/ansible.cfg"
cd "$base"
export PATH="$venv/bin:$PATH" HOME="$base/home" ANSIBLE_CONFIG="$base/ansible.cfg"
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
"$venv/bin/antsibull-docs" lint-collection-docs --plugin-docs --validate-collection-refs=self "$work"

# Changelog: every fragment lints, and a release would render (in the scratch copy only; the
# repository keeps its fragments and no release is committed).
cd "$work"
"$venv/bin/antsibull-changelog" lint
version=$("$venv/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
"$venv/bin/antsibull-changelog" release --version "$version" --date "$(date -u +%F)"
"$venv/bin/antsibull-changelog" generate
test -s CHANGELOG.rst
grep -q "^v$version" CHANGELOG.rst
echo "docs lint clean; changelog release $version renders ($(grep -c '^- ' CHANGELOG.rst) entries in CHANGELOG.rst)"
