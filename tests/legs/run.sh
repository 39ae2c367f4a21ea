#!/usr/bin/env bash
# The ansible-core matrix beside the main leg (.venv, requirements.txt):
#   oldest  the oldest ansible-core the collection claims (meta/runtime.yml requires_ansible),
#           requirements-oldest.txt, on the default python3;
#   newest  the newest ansible-core (requirements-newest.txt) on the newest Python this machine
#           has; skipped with a message when there is none newer than the default python3.
# Each leg runs the unit tests and real playbook runs: the evidence playbooks (callback result
# objects differ between cores) and one full rotate.yml rotation with rehearsal and rollback.
# The long fault-injection matrix runs once, in the main leg; of it the legs run the interrupted
# hook, since cores differ in passing a controller's SIGTERM on to the module (2.17 does not).
#
# Usage: tests/legs/run.sh oldest|newest [setup]   (setup: only build the leg's venv)
set -euo pipefail
leg=${1:?usage: tests/legs/run.sh oldest|newest [setup]}
only_setup=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv="$root/.venv-$leg"
base_minor=$(python3 -c 'import sys; print(sys.version_info[1])')

case "$leg" in
  oldest)
    python=$(command -v python3)
    ;;
  newest)
    python=""
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
      if [ "$minor" -gt "$newest_minor" ]; then python=$py; newest_minor=$minor; fi
    done
    if [ -z "$python" ]; then
      echo "newest: SKIPPED - no Python newer than 3.$base_minor on this machine; ansible-core 2.20+ needs Python 3.12+"
      exit 0
    fi
    ;;
  *)
    echo "tests/legs/run.sh: unknown leg '$leg' (oldest or newest)" >&2
    exit 2
    ;;
esac

requirements="requirements-$leg.txt"
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$stamp"
fi
if [ "$only_setup" = setup ]; then
  echo "$leg: venv ready ($venv)"
  exit 0
fi
echo "$leg: ansible-core $("$venv/bin/python" -c "import ansible.release as r; print(r.__version__)") on $("$venv/bin/python" --version)"
export PATH="$venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/unit tests/integration/evidence \
  "tests/integration/workflow/test_rotation_success.py::test_full_rotation_then_idempotent_rerun_then_later_rollback" \
  "tests/integration/workflow/test_hook_faults.py::test_ctrl_c_kills_hook_process_group"
