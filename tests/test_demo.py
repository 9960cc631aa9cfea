"""make demo: imports the example transcript and prints it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.pgserver import find_free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "chat.json"


def _run_demo(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _assert_prints_example(stdout: str) -> None:
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert "Newest conversations:" in stdout
    assert example["model"] in stdout
    for message in example["messages"]:
        assert f"[{message['role']}] {message['content']}" in stdout


def test_demo_on_reachable_server(dsn: str) -> None:
    result = _run_demo(dsn)
    assert result.returncode == 0, result.stderr
    assert "Using the server that DATABASE_URL names." in result.stdout
    _assert_prints_example(result.stdout)


@pytest.mark.slow
def test_demo_starts_throwaway_server() -> None:
    result = _run_demo(f"postgresql://postgres@127.0.0.1:{find_free_port()}/postgres")
    assert result.returncode == 0, result.stderr
    assert "starting a throwaway PostgreSQL" in result.stdout
    assert "Throwaway server stopped and removed." in result.stdout
    _assert_prints_example(result.stdout)
