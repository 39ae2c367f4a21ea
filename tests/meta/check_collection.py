# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Collect the pytest suites twice and fail when the two lists of test ids differ.

pytest-xdist refuses to run when its workers collect different ids ("Different tests were
collected between gw0 and gw1"), which happens whenever an id is built from the clock, a random
value or machine state. The two collections here run at different seconds (one after the other,
with a pause) and with different hash seeds, so an id built from time, randomness or set order
shows up as a difference here, with the ids named, before the real run starts.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
import time


def collect(paths: list[str], seed: str) -> list[str]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *paths],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        sys.exit(f"check_collection: collecting {' '.join(paths)} failed (pytest exit {proc.returncode})")
    return [line for line in proc.stdout.splitlines() if "::" in line]


def main() -> int:
    paths = sys.argv[1:] or ["tests"]
    first = collect(paths, "1")
    time.sleep(1.1)  # the second collection starts in another second even on a fast machine
    second = collect(paths, "2")
    if first != second:
        diff = "\n".join(difflib.unified_diff(first, second, "first collection", "second collection", lineterm="", n=0))
        sys.stderr.write(diff + "\n")
        sys.stderr.write("check_collection: test ids differ between two collections of the same tree: an id is built "
                         "from the clock, randomness or machine state. Parametrize with labels or offsets and compute "
                         "the value inside the test.\n")
        return 1
    print(f"check_collection: {len(first)} test ids, identical in two collections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
