#!/usr/bin/env bash
# Run `ansible-test sanity` without Docker on a copy of the collection laid out as
# ansible_collections/alfred/tee_kms (ansible-test requires that path).
# Usage: tests/sanity/run.sh <venv-dir> <python-version>
set -euo pipefail
venv=${1:-.venv}
pyver=${2:-3.11}
root=$(cd "$(dirname "$0")/../.." && pwd)
work="$root/.cache/sanity-$pyver/ansible_collections/alfred/tee_kms"

# ansible-test bootstraps pip in its venvs with a script it downloads from a host this
# machine cannot reach; seed its cache with the offline equivalent kept in shared/tools.
pip_ver=$(grep -oP "pip='\K[0-9.]+" "$root/$venv"/lib/python*/site-packages/ansible_test/_internal/python_requirements.py | head -1)
cache="$HOME/.ansible/test/cache/get_pip_${pip_ver//./_}.py"
if [ ! -s "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  cp "$root/tests/sanity/get-pip-offline.py" "$cache"
fi

# The shellcheck sanity test is skipped when shellcheck is missing; install it when we can.
if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null 2>&1 || echo "sanity: shellcheck could not be installed; ansible-test will skip it"
fi

rm -rf "$work" && mkdir -p "$work"
# Tracked files plus new ones not ignored, less the helper programs that galaxy.yml
# build_ignore keeps out of the built collection (tools/, benchmarks/).
(cd "$root" && git ls-files -co --exclude-standard -z -- . ":!tools" ":!benchmarks" | xargs -0 cp --parents -t "$work")
cd "$work"
git init -q && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity
"$root/$venv/bin/ansible-test" sanity --venv --python "$pyver" --color no "${@:3}"
