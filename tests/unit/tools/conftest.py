"""Make the enclave simulator importable by path: tools/ is not part of the built collection."""

import sys
from pathlib import Path

SIM_DIR = Path(__file__).resolve().parents[3] / "tools" / "enclave_sim"
if str(SIM_DIR) not in sys.path:
    sys.path.insert(0, str(SIM_DIR))
