#!/usr/bin/env bash
# Second leg of the test matrix: the newest ansible-core (requirements-newest.txt) on the
# newest Python found on this machine. Runs the unit tests and the playbook-level tests
# (callback, workflow) against that ansible-core. Skips with a message when no Python newer
# than the default one is available.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv="$root/.venv-newest"
base_minor=$(python3 -c 'import sys; print(sys.version_info[1])')

newest=""
newest_minor=$base_minor
candidates=()
for m in 14 13 12; do
  found=$(command -v "python3.$m" 2>/dev/null) && candidates+=("$found")
done
for found in "$HOME"/.pyenv/versions/3.*/bin/python3.[0-9]*; do
  case "$found" in *-config|*m) continue ;; esac
  [ -x "$found" ] && candidates+=("$found")
done
for py in "${candidates[@]}"; do
  minor=$("$py" -c 'import sys; print(sys.version_info[1])' 2>/dev/null) || continue
  if [ "$minor" -gt "$newest_minor" ]; then newest=$py; newest_minor=$minor; fi
done
if [ -z "$newest" ]; then
  echo "newest: SKIPPED - no Python newer than 3.$base_minor on this machine; ansible-core 2.20+ needs Python 3.12+"
  exit 0
fi

stamp="$venv/.installed-$(sha256sum requirements-newest.txt | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  "$newest" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-newest.txt
  touch "$stamp"
fi
echo "newest: ansible-core $("$venv/bin/python" -c "import ansible.release as r; print(r.__version__)") on $("$venv/bin/python" --version)"
export PATH="$venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
# The playbook-level suites that exercise version-specific paths (callback result objects,
# module execution) run here; the long fault-injection matrix runs once, in the main leg.
exec "$venv/bin/python" -m pytest -q tests/unit tests/integration/evidence -m "not slow" -p no:cacheprovider
