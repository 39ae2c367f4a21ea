#!/usr/bin/env bash
# Put the awx.awx collection (needed by playbooks/awx_configure.yml) under
# .cache/collections/ansible_collections/awx/awx without Galaxy: it ships inside the PyPI
# package `ansible`, so download that wheel with pip and extract only awx/awx from it.
# Idempotent: does nothing when the collection is already there.
# Usage: tests/awx/fetch_awx_collection.sh [<venv-dir>]   (default .venv)
# Env: ANSIBLE_PYPI_VERSION (default 12.3.0)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-.venv}
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
version=${ANSIBLE_PYPI_VERSION:-12.3.0}
dest="$root/.cache/collections/ansible_collections/awx/awx"

if [ -f "$dest/MANIFEST.json" ]; then
  echo "awx.awx already present in $dest"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
  --only-binary=:all: --dest "$tmp" "ansible==$version"
wheel=$(ls "$tmp"/ansible-"$version"-*.whl)
# Extract into a staging dir and move into place, so an interrupted run never leaves a
# half-extracted collection that the check above would take for a complete one.
"$venv/bin/python" - "$wheel" "$tmp/stage" <<'PY'
import sys
import zipfile

wheel, out = sys.argv[1], sys.argv[2]
prefix = "ansible_collections/awx/awx/"
with zipfile.ZipFile(wheel) as archive:
    members = [name for name in archive.namelist() if name.startswith(prefix)]
    if not any(name == prefix + "MANIFEST.json" for name in members):
        sys.exit(f"{wheel} does not contain {prefix}MANIFEST.json")
    archive.extractall(out, members)
print(f"extracted {len(members)} files of awx.awx from {wheel.rsplit('/', 1)[-1]}")
PY
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$tmp/stage/ansible_collections/awx/awx" "$dest"
echo "awx.awx $("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' "$dest/MANIFEST.json") installed in $dest"
