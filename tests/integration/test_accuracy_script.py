"""bench/accuracy.py on a small random script: every change found exactly once, under faults,
by VK polling, VK callbacks with polling, and Odnoklassniki polling.

The script builds its own portal (SQLite in a temporary file) and sandbox, so this test uses
none of the database fixtures and is not marked `database`.
"""

from __future__ import annotations

import re

import pytest

from bench.accuracy import main

SUMMARY = re.compile(
    r"accuracy expected=(\d+) found=(\d+) missing=(\d+) extra=(\d+) ledger_mismatch=(\d+) "
    r"counted_twice=(\d+)"
)


@pytest.mark.parametrize(
    "mode", [[], ["--callbacks"], ["--network", "ok"]], ids=["vk", "vk-callbacks", "ok"]
)
def test_the_collector_finds_every_change_once_and_the_ledger_agrees(capsys, mode):
    status = main(
        ["--seed", "11", "--actions", "150", "--persons", "12", "--fault-rate", "0.1", *mode]
    )
    output = capsys.readouterr().out
    match = SUMMARY.fullmatch(output.strip().splitlines()[-1])
    assert match, output
    expected, found, missing, extra, ledger_mismatch, twice = map(int, match.groups())
    assert (missing, extra, ledger_mismatch, twice) == (0, 0, 0, 0), output
    assert expected > 0 and found == expected
    assert status == 0
