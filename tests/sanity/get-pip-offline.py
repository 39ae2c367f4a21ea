"""Offline pip bootstrap for ansible-test's virtual environments.

ansible-test normally downloads get-pip.py; this machine cannot reach that host. Installing
pip from the interpreter's bundled wheel (ensurepip) and then running the install ansible-test
asked for gives the same result through the configured package index.
"""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# ensurepip sets these for its own run; left in place they make pip ignore the machine's
# pip configuration (index and certificate bundle).
os.environ.pop("PIP_CONFIG_FILE", None)
os.environ.pop("ENSUREPIP_OPTIONS", None)
requested = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *requested]))
