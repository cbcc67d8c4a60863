"""The docs stay true to the program: README lists every command `ant --help` lists, and
every relative link and #anchor in README.md and docs/*.md resolves (tools/checkdocs.py,
also run by `make docs-check`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tools import checkdocs

REPO = Path(__file__).resolve().parents[2]


def help_commands() -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "ant", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    section = proc.stdout.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ")]


def readme_commands() -> list[str]:
    """The first word after `ant` in each row of README's command table."""
    return re.findall(r"^\| \[`ant ([a-z-]+)[^`]*`\]", (REPO / "README.md").read_text(), re.M)


def test_readme_lists_every_command_of_ant_help() -> None:
    listed = help_commands()
    assert len(listed) > 10
    assert readme_commands() == listed


def test_every_relative_link_and_anchor_in_the_docs_resolves() -> None:
    assert [p for doc in checkdocs.documents() for p in checkdocs.problems(doc)] == []


def test_the_link_check_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## ant cache serve\n\n## Sweeps: a / b\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Title\n\n## Same\n\n## Same\n\n"
        "[ok](other.md#ant-cache-serve) [ok](other.md#sweeps-a--b) [ok](#same-1)\n"
        "[`code` ok](#title) [web](https://example.com/x#y) `[not a link](#nowhere)`\n"
        "```\n[in a code block](#nowhere)\n```\n"
        "[gone](missing.md) [no anchor](other.md#ant-cache) [no anchor](#same-2)\n"
    )
    assert [p.split(": ", 1)[1] for p in checkdocs.problems(doc)] == [
        "missing.md: no such file",
        "other.md#ant-cache: no heading with that anchor",
        "#same-2: no heading with that anchor",
    ]
