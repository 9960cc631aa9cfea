"""The wheel carries queries/ and schema/ and works outside the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from hwlab_sql import async_queries, queries
from hwlab_sql._sql import QUERIES_DIR, SCHEMA_DIR

ROOT = Path(__file__).resolve().parent.parent

USE_INSTALLED = textwrap.dedent(
    """
    import sys
    import hwlab_sql
    from hwlab_sql import Store

    assert "{root}" not in hwlab_sql.__file__, hwlab_sql.__file__
    with Store.open(sys.argv[1], min_size=1) as store:
        applied = store.run_migrations()
        conversation_id = store.create_conversation(model="from the wheel")
        store.add_messages(conversation_id, [("user", "hi"), ("assistant", "hello")])
        conversation = store.get_conversation(conversation_id)
    print(len(applied), conversation.model, len(conversation.messages))
    """
)


def test_query_objects_are_public() -> None:
    assert "add_message" in queries.available_queries
    assert "add_message" in async_queries.available_queries
    assert queries.add_message.sql == async_queries.add_message.sql


def test_every_query_has_a_doc_comment() -> None:
    for name in queries.available_queries:
        if name.endswith("_cursor"):
            continue
        assert getattr(queries, name).__doc__, f"{name} has no comment above it"


def test_query_names_are_unique_across_files() -> None:
    names: list[str] = []
    for path in QUERIES_DIR.glob("*.sql"):
        for line in path.read_text().splitlines():
            if line.startswith("-- name:"):
                names.append(line.split(":", 1)[1].strip().split("(")[0].rstrip("$^!#"))
    assert len(names) == len(set(names)), names


@pytest.mark.slow
def test_wheel_installs_and_runs_elsewhere(tmp_path: Path, dsn: str) -> None:
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = wheel_dir.glob("hwlab_sql-*.whl")

    listing = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for path in [*QUERIES_DIR.glob("*.sql"), *SCHEMA_DIR.glob("*.sql")]:
        assert f"hwlab_sql/sql/{path.parent.name}/{path.name}" in listing
    assert "hwlab_sql/py.typed" in listing

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[binary]"],
        check=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = elsewhere / "use_it.py"
    script.write_text(USE_INSTALLED.replace("{root}", str(ROOT)))
    result = subprocess.run(
        [str(python), str(script), dsn],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "from", "the", "wheel", "2"]

    # The console script reads the same database, with the SQL from the wheel.
    command = env_dir / "bin" / "hwlab-sql"
    listed = subprocess.run(
        [str(command), "--dsn", dsn, "list", "--json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert [row["model"] for row in json.loads(listed.stdout)] == ["from the wheel"]
    checked = subprocess.run(
        [str(command), "--dsn", dsn, "check"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "hwlab_sql/sql/queries/migrations.sql:" in checked.stdout
