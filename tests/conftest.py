# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures every suite shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# CI lays shared/ beside the clone; developers have it beside their checkout.
NITRO_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "testvectors" / "nitro"
NITRO_VECTOR_FILES = ("AWS_NitroEnclaves_Root-G1.pem", "nitro_attestation.b64", "nitro_attestation_debug.b64")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable_here(message: str) -> None:
    """Something a test needs is missing: skip, naming it; with CI=true fail instead, since CI
    provides it (.ci/run, shared/ beside the clone) and a skip there would hide the test."""
    if in_ci():
        pytest.fail(message + "; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def unavailable():
    """``unavailable(message)``: skip outside CI, fail with CI=true (see unavailable_here)."""
    return unavailable_here


@pytest.fixture(scope="session")
def nitro_vectors() -> Path:
    """The folder of genuine AWS Nitro vectors. Missing outside CI: skip, naming the path.
    Missing in CI (CI=true): fail, since CI always has shared/ beside the clone and a skip there
    would hide the only tests against documents AWS itself signed."""
    missing = [name for name in NITRO_VECTOR_FILES if not (NITRO_VECTORS / name).is_file()]
    if missing:
        message = (f"genuine AWS Nitro test vectors {', '.join(missing)} not found in {NITRO_VECTORS} "
                   "(expected ../shared/testvectors/nitro beside the repository root)")
        unavailable_here(message)
    return NITRO_VECTORS


# --- report.html of an evidence bundle -------------------------------------------------------

class ReportTables:
    """The tables (by id) and hook output blocks of a report.html, read with html.parser; also
    counts the elements that would run or load something (script, link, img, iframe, object...)."""

    ACTIVE = ("script", "link", "img", "iframe", "object", "embed", "base", "form", "audio", "video", "source")

    def __init__(self, text: str):
        from html.parser import HTMLParser

        self.tables: dict = {}
        self.outputs: dict = {}
        self.active: list = []
        self.external: list = []
        self.title = ""
        state = {"table": None, "row": None, "cell": None, "pre": None, "title": False}
        owner = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                if tag in owner.ACTIVE:
                    owner.active.append(tag)
                for name, value in attrs.items():
                    if name in ("src", "href", "action") or (value or "").lower().startswith(("http:", "https:", "//")):
                        owner.external.append((tag, name, value))
                if tag == "table":
                    state["table"] = owner.tables.setdefault(attrs.get("id"), [])
                elif tag == "tr" and state["table"] is not None:
                    state["row"] = []
                elif tag in ("td", "th") and state["row"] is not None:
                    state["cell"] = []
                elif tag == "pre" and "hook-output" in (attrs.get("class") or ""):
                    state["pre"] = {"key": (attrs.get("data-hook"), attrs.get("data-stream")), "parts": []}
                elif tag == "title":
                    state["title"] = True

            def handle_endtag(self, tag):
                if tag in ("td", "th") and state["cell"] is not None:
                    state["row"].append(" ".join("".join(state["cell"]).split()))
                    state["cell"] = None
                elif tag == "tr" and state["row"] is not None:
                    state["table"].append(state["row"])
                    state["row"] = None
                elif tag == "table":
                    state["table"] = None
                elif tag == "pre" and state["pre"] is not None:
                    owner.outputs[state["pre"]["key"]] = "".join(state["pre"]["parts"])
                    state["pre"] = None
                elif tag == "title":
                    state["title"] = False

            def handle_data(self, data):
                if state["cell"] is not None:
                    state["cell"].append(data)
                if state["pre"] is not None:
                    state["pre"]["parts"].append(data)
                if state["title"]:
                    owner.title += data

        parser = Parser(convert_charrefs=True)
        parser.feed(text)
        parser.close()

    def rows(self, table_id: str) -> list:
        """Body rows (the header row dropped) of one table."""
        assert table_id in self.tables, f"report.html has no table {table_id!r}: {sorted(map(str, self.tables))}"
        return self.tables[table_id][1:]

    def facts(self, table_id: str = "run") -> dict:
        return {row[0]: row[1] for row in self.rows(table_id)}


@pytest.fixture(scope="session")
def report_tables():
    """``report_tables(html_text)`` -> ReportTables."""
    return ReportTables


@pytest.fixture(scope="session")
def chromium_dom():
    """``chromium_dom(html_file, tmp_path)`` -> the DOM headless Chromium builds from the file.
    Chromium (Debian package ``chromium``) missing outside CI: skip, saying so; missing with
    CI=true: fail (.ci/run installs it)."""
    import functools
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "chromium not found on PATH (Debian package 'chromium': apt-get install -y chromium)"
        unavailable_here(message)
    return functools.partial(_chromium_dump_dom, found)


def _chromium_dump_dom(chromium_path: str, html_file, tmp_path) -> str:
    """The DOM Chromium builds from a local file, serialized (``--dump-dom``), network disabled."""
    import subprocess

    profile = tmp_path / "chromium-profile"
    cmd = [chromium_path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           f"--user-data-dir={profile}", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           "--dump-dom", Path(html_file).resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0 and "<table" in done.stdout, f"chromium failed: rc={done.returncode}\n{done.stderr[-3000:]}"
    return done.stdout
