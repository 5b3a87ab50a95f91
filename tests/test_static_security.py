"""A static security scan of the Python code: ruff's ``S`` rules (flake8-bandit) on the package, the
deployment tooling and the container, with no unexplained finding.

A finding that is acceptable carries an inline ``# noqa: S### - <reason>`` on the line ruff reports it
for; this test fails on any finding without one, on a noqa without a reason, and on a stale noqa
(one that no longer silences anything), so the explanations stay true.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("genolake_assets", "deploy", "containers")
NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*)(?P<reason>.*)$")
SECURITY_CODE = re.compile(r"S\d{3}")
MIN_REASON_WORDS = 3


def _ruff(*arguments: str) -> list[dict]:
    paths = [p for p in SCANNED if (REPO / p).exists()]
    command = [sys.executable, "-m", "ruff", "check", "--select", "S", "--output-format", "json",
               "--no-cache", *arguments, *paths]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    if result.returncode not in (0, 1):
        pytest.fail(f"ruff did not run (exit {result.returncode}): {result.stderr or result.stdout}")
    return json.loads(result.stdout or "[]")


def _where(finding: dict) -> str:
    path = Path(finding["filename"]).relative_to(REPO)
    return f"{path}:{finding['location']['row']} {finding['code']} {finding['message']}"


def test_the_scan_covers_the_code():
    assert (REPO / "genolake_assets").is_dir()
    # ruff reads [tool.ruff] from pyproject.toml; the scan must see the package's files.
    listed = subprocess.run([sys.executable, "-m", "ruff", "check", "--show-files", *SCANNED[:1]],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    assert "genolake_assets/definitions.py" in listed.stdout


def test_no_unexplained_security_findings():
    findings = _ruff()
    if findings:
        pytest.fail("unexplained security findings (fix them, or add `# noqa: S### - reason` on the reported "
                    "line if they are safe):\n" + "\n".join(_where(f) for f in findings))


def _noqa_comments() -> dict[tuple[str, int], tuple[set[str], str]]:
    comments = {}
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")) if (REPO / top).exists() else []:
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                match = NOQA.search(line)
                codes = {c.strip() for c in match["codes"].split(",")} if match else set()
                codes = {c for c in codes if SECURITY_CODE.fullmatch(c)}
                if codes:
                    comments[(str(path.relative_to(REPO)), number)] = (codes, match["reason"].strip(" -:—"))
    return comments


def test_every_security_noqa_says_why_and_still_applies():
    silenced: dict[tuple[str, int], set[str]] = defaultdict(set)
    for finding in _ruff("--ignore-noqa"):
        silenced[(str(Path(finding["filename"]).relative_to(REPO)), finding["noqa_row"])].add(finding["code"])
    problems = []
    for (path, line), (codes, reason) in _noqa_comments().items():
        if len(reason.split()) < MIN_REASON_WORDS:
            problems.append(f"{path}:{line}: `noqa: {', '.join(sorted(codes))}` without a reason")
        stale = codes - silenced.get((path, line), set())
        if stale:
            problems.append(f"{path}:{line}: `noqa: {', '.join(sorted(stale))}` silences nothing (remove it)")
    if problems:
        pytest.fail("\n".join(problems))
