# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a call in a forked child with a generous deadline: a test of hostile input fails, rather
than hangs, on code that is super-linear in it (issue 22). Not a timing assertion: the deadline is
orders of magnitude above what the linear code takes, and far below what the old code took.

A child process, not a thread: a regular expression holds the GIL for the whole match, so a
watching thread would not even get to notice the deadline.
"""

from __future__ import annotations

import importlib
import multiprocessing

import pytest

HANG_DEADLINE = 30.0


def _portable(exc: BaseException) -> tuple:
    return (type(exc).__module__, type(exc).__qualname__, str(exc), dict(vars(exc)))


def _rebuilt(module: str, qualname: str, text: str, attributes: dict) -> BaseException:
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    exc = cls.__new__(cls)
    exc.args = (text,)
    vars(exc).update(attributes)
    return exc


def run_with_hang_guard(func, *args, deadline: float = HANG_DEADLINE):
    """``func(*args)`` computed in a child: its result, or its exception raised here; the test fails
    when the child is still busy after ``deadline`` seconds (the child is then killed)."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def target():
        try:
            outcome = ("returned", func(*args))
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the test
            outcome = ("raised", _portable(exc))
        sender.send(outcome)

    child = context.Process(target=target, daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(deadline):
            child.kill()
            pytest.fail(f"{getattr(func, '__name__', func)} was still running after {deadline:g}s on hostile input (killed)")
        kind, value = receiver.recv()
    finally:
        child.join(10)
        receiver.close()
    if kind == "raised":
        raise _rebuilt(*value)
    return value
