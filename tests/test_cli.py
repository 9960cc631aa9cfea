"""The hwlab-sql command, run as a real process against a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from hwlab_sql import Store
from hwlab_sql._sql import QUERIES_DIR, SCHEMA_DIR
from hwlab_sql.transcripts import parse_transcript, transcript_json
from tests.helpers import count_rows
from tools.pgserver import find_free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_NAMES = [path.name for path in sorted(SCHEMA_DIR.glob("*.sql"))]
COMMANDS = ["migrate", "status", "check", "list", "show", "import", "export"]
PASSWORD = "s3cret-Pa55word-for-cli-tests"
MISSING_ID = "0b7a7d8e-4c1f-4d5a-9a57-2f1c6f3e8d10"

# Text that breaks naive quoting, encoding or line handling, message by message.
HARD_MESSAGES = [
    {"role": "system", "content": "Answer in 🇩🇪 German, 日本語 or emoji 👩‍🔬🧪."},
    {"role": "user", "content": "It's \"quoted\" and 'single' and `back`ticked"},
    {"role": "user", "content": "'); DROP TABLE conversations; --"},
    {"role": "assistant", "content": "SELECT * FROM messages WHERE content = '%s' %%"},
    {"role": "user", "content": "line one\nline two\r\nline three\n\n"},
    {"role": "assistant", "content": "tab\there, backslash \\ and \\n literally"},
    {"role": "user", "content": "escape \x1b[31mred\x1b[0m, bell \x07, del \x7f"},
    {"role": "assistant", "content": "separators \u2028 and \u2029, BOM \ufeff"},
    {"role": "user", "content": ""},
    {"role": "assistant", "content": "   leading and trailing spaces   "},
]


def run_cli(
    dsn: str | None,
    *args: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m hwlab_sql ARGS`` with DATABASE_URL=*dsn*."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("DATABASE_URL", None)
    if dsn is not None:
        environment["DATABASE_URL"] = dsn
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hwlab_sql", *args],
        input=stdin,
        capture_output=True,
        env=environment,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def stdout_of(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    return result.stdout.decode("utf-8")


def assert_one_error_line(
    result: subprocess.CompletedProcess[bytes], status: int, *fragments: str
) -> str:
    """Check the exit status and that stderr is one line with *fragments*."""
    stderr = result.stderr.decode("utf-8")
    assert result.returncode == status, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("hwlab-sql")
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr
    return stderr


def assert_nothing_stored(db: psycopg.Connection[Any]) -> None:
    assert count_rows(db, "conversations") == 0
    assert count_rows(db, "messages") == 0


@pytest.fixture
def empty_db(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The test's database with the schema and its ledger dropped."""
    db.execute(
        "DROP TABLE IF EXISTS messages, conversations, hwlab_sql_migrations CASCADE;"
        " DROP FUNCTION IF EXISTS messages_update_message_count()"
    )
    return db


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, directory)
    return directory


@pytest.fixture
def queries_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "queries"
    shutil.copytree(QUERIES_DIR, directory)
    return directory


def write_transcript(path: Path, messages: list[dict[str, str]]) -> Path:
    path.write_text(
        json.dumps({"model": "gpt-4o", "messages": messages}), encoding="utf-8"
    )
    return path


def import_ids(dsn: str, *paths: Path) -> list[str]:
    output = stdout_of(run_cli(dsn, "import", *map(str, paths)))
    return output.splitlines()


# --help


def test_help_lists_commands_and_exit_statuses() -> None:
    output = stdout_of(run_cli(None, "--help"))
    for command in COMMANDS:
        assert command in output
    assert "DATABASE_URL" in output
    assert "3  conversation not found" in output
    assert "4  a schema script was edited" in output


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(command: str) -> None:
    output = stdout_of(run_cli(None, command, "--help"))
    assert f"usage: hwlab-sql {command}" in output
    assert "--dsn DSN" in output
    assert "seconds to wait for the server" in output
    assert "exit status:" in output


def test_help_names_units_and_ranges() -> None:
    listing = stdout_of(run_cli(None, "list", "--help"))
    assert "1 to 100 (default: 20)" in " ".join(listing.split())
    migrate = stdout_of(run_cli(None, "migrate", "--help"))
    assert "--schema DIR" in migrate


def test_missing_command_is_usage_error() -> None:
    result = run_cli(None)
    assert_one_error_line(result, 2, "COMMAND")
    assert result.stdout == b""


def test_options_after_command_name(dsn: str) -> None:
    # --dsn given after the command name wins over a broken DATABASE_URL.
    result = run_cli("host=127.0.0.1 port=1", "status", "--dsn", dsn)
    assert "001_conversations.sql" in stdout_of(result)


# migrate and status


def test_migrate_empty_database(empty_db: psycopg.Connection[Any], dsn: str) -> None:
    output = stdout_of(run_cli(dsn, "migrate"))
    assert output.splitlines() == [f"applied {name}" for name in SCRIPT_NAMES]
    ledger = empty_db.execute("SELECT name FROM hwlab_sql_migrations").fetchall()
    assert sorted(row[0] for row in ledger) == SCRIPT_NAMES


def test_migrate_when_up_to_date(dsn: str) -> None:
    output = stdout_of(run_cli(dsn, "migrate"))
    assert output == "schema is up to date, nothing to apply\n"


def test_migrate_verbose_logs_scripts(
    empty_db: psycopg.Connection[Any], dsn: str
) -> None:
    result = run_cli(dsn, "-v", "migrate")
    assert result.returncode == 0
    stderr = result.stderr.decode()
    for name in SCRIPT_NAMES:
        assert f"hwlab-sql: applied schema/{name}" in stderr


def test_status_of_migrated_database(dsn: str) -> None:
    lines = stdout_of(run_cli(dsn, "status")).splitlines()
    assert lines[0].split() == ["script", "state", "applied", "at"]
    assert [line.split()[0] for line in lines[1:]] == SCRIPT_NAMES
    assert all(line.split()[1] == "applied" for line in lines[1:])
    assert all(line.endswith(" UTC") for line in lines[1:])


def test_status_of_empty_database(empty_db: psycopg.Connection[Any], dsn: str) -> None:
    lines = stdout_of(run_cli(dsn, "status")).splitlines()
    assert [line.split() for line in lines[1:]] == [
        [name, "pending"] for name in SCRIPT_NAMES
    ]
    # status changes nothing, not even the ledger.
    exists = empty_db.execute("SELECT to_regclass('hwlab_sql_migrations')").fetchone()
    assert exists == (None,)


def test_status_with_edited_script(
    db: psycopg.Connection[Any], dsn: str, schema_copy: Path
) -> None:
    edited = schema_copy / SCRIPT_NAMES[0]
    edited.write_text(edited.read_text() + "-- an edit\n")
    result = run_cli(dsn, "status", "--schema", str(schema_copy))
    assert_one_error_line(result, 4, "edited after they were applied", SCRIPT_NAMES[0])
    states = [line.split()[:2] for line in result.stdout.decode().splitlines()[1:]]
    assert states[0] == [SCRIPT_NAMES[0], "edited"]
    assert all(state == "applied" for _, state in states[1:])


def test_migrate_refuses_edited_script(
    db: psycopg.Connection[Any], dsn: str, schema_copy: Path
) -> None:
    ledger_before = db.execute("SELECT * FROM hwlab_sql_migrations").fetchall()
    edited = schema_copy / SCRIPT_NAMES[1]
    edited.write_text(edited.read_text().replace("Needs 001.", "Needs 001!"))
    (schema_copy / "900_extra.sql").write_text("CREATE TABLE extra (id int);\n")
    result = run_cli(dsn, "migrate", "--schema", str(schema_copy))
    assert_one_error_line(result, 4, SCRIPT_NAMES[1], "add a new script")
    assert result.stdout == b""
    assert db.execute("SELECT * FROM hwlab_sql_migrations").fetchall() == ledger_before
    assert db.execute("SELECT to_regclass('extra')").fetchone() == (None,)


def test_migrate_failing_script_names_file_and_line(
    db: psycopg.Connection[Any], dsn: str, schema_copy: Path
) -> None:
    (schema_copy / "900_good.sql").write_text("CREATE TABLE good (id int);\n")
    (schema_copy / "901_bad.sql").write_text(
        "-- a comment\nCREATE TABLE bad (\n    id int,\n    b nosuchtype\n);\n"
    )
    result = run_cli(dsn, "migrate", "--schema", str(schema_copy))
    stderr = assert_one_error_line(result, 1, 'type "nosuchtype" does not exist')
    assert "schema/901_bad.sql:4: " in stderr
    assert result.stdout == b""
    assert db.execute("SELECT to_regclass('good')").fetchone() == ("good",)
    assert db.execute("SELECT to_regclass('bad')").fetchone() == (None,)
    names = db.execute("SELECT name FROM hwlab_sql_migrations").fetchall()
    assert ("900_good.sql",) in names
    assert ("901_bad.sql",) not in names


def test_migrate_missing_schema_dir(dsn: str, tmp_path: Path) -> None:
    result = run_cli(dsn, "migrate", "--schema", str(tmp_path / "nowhere"))
    assert_one_error_line(result, 1, "no schema scripts found")


# check


def test_check_passes_on_real_queries(db: psycopg.Connection[Any], dsn: str) -> None:
    output = stdout_of(run_cli(dsn, "check"))
    lines = output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("queries/migrations.sql:")
    assert ": create_ledger: skipped: " in lines[0]
    assert lines[1].endswith(" prepared, 1 skipped, 0 failed")
    assert_nothing_stored(db)


def test_check_reports_misspelled_column(dsn: str, queries_copy: Path) -> None:
    path = queries_copy / "conversations.sql"
    lines = path.read_text().splitlines()
    # The select list of get_conversation, the second query of the file.
    name_line = lines.index("-- name: get_conversation(conversation_id)^") + 1
    bad_line = lines.index("    c.model", name_line) + 1
    lines[bad_line - 1] = "    c.modle"
    path.write_text("\n".join(lines) + "\n")

    result = run_cli(dsn, "check", "--queries", str(queries_copy))
    assert result.returncode == 5
    output = result.stdout.decode()
    failures = [line for line in output.splitlines() if "does not exist" in line]
    assert failures == [
        f"{path}:{bad_line}: get_conversation: column c.modle does not exist"
        ' (hint: Perhaps you meant to reference the column "c.model".)'
    ]
    assert output.splitlines()[-1].endswith(" 1 skipped, 1 failed")
    assert result.stderr == b""


def test_check_reports_name_line_without_position(dsn: str, queries_copy: Path) -> None:
    # Two statements in one query: the server's error has no position.
    path = queries_copy / "health.sql"
    path.write_text("-- name: ping()$\n-- Two statements.\nSELECT 1;\nSELECT 2;\n")
    result = run_cli(dsn, "check", "--queries", str(queries_copy))
    assert result.returncode == 5
    failures = [line for line in result.stdout.decode().splitlines() if "ping" in line]
    assert failures == [
        f"{path}:1: ping: cannot insert multiple commands into a prepared statement"
    ]


def test_check_rejects_bare_percent(dsn: str, queries_copy: Path) -> None:
    path = queries_copy / "health.sql"
    path.write_text("-- name: ping()$\n-- Modulo.\nSELECT 10 % 3;\n")
    result = run_cli(dsn, "check", "--queries", str(queries_copy))
    assert result.returncode == 5
    assert f"{path}:1: ping: invalid placeholder '% '" in result.stdout.decode()


def test_check_executes_nothing(
    db: psycopg.Connection[Any], dsn: str, queries_copy: Path
) -> None:
    with Store.open(dsn, min_size=1) as store:
        conversation_id = store.create_conversation(model="kept")
        store.add_message(conversation_id, "user", "still here")
    (queries_copy / "wipe.sql").write_text(
        "-- name: wipe()!\n-- Deletes everything.\nDELETE FROM conversations;\n\n"
        "-- name: wipe_ledger#\n-- Drops the ledger.\n"
        "DROP TABLE hwlab_sql_migrations;\n"
    )
    output = stdout_of(run_cli(dsn, "check", "--queries", str(queries_copy)))
    assert ": wipe_ledger: skipped: " in output
    assert output.splitlines()[-1].endswith(" 2 skipped, 0 failed")
    assert count_rows(db, "conversations") == 1
    assert count_rows(db, "messages") == 1
    exists = db.execute("SELECT to_regclass('hwlab_sql_migrations')").fetchone()
    assert exists == ("hwlab_sql_migrations",)


def test_check_unparsable_query_file(dsn: str, queries_copy: Path) -> None:
    (queries_copy / "broken.sql").write_text("-- name: 1st_query\nSELECT 1;\n")
    result = run_cli(dsn, "check", "--queries", str(queries_copy))
    assert_one_error_line(result, 1, "invalid query name and operation spec")
    assert result.stdout == b""


def test_check_warns_of_pending_scripts(
    empty_db: psycopg.Connection[Any], dsn: str
) -> None:
    result = run_cli(dsn, "check")
    assert result.returncode == 5
    stderr = result.stderr.decode()
    assert "schema scripts not applied yet" in stderr
    assert 'relation "conversations" does not exist' in result.stdout.decode()


# list, show, export


def test_list_empty_database(dsn: str) -> None:
    assert stdout_of(run_cli(dsn, "list")) == "no conversations\n"
    assert json.loads(stdout_of(run_cli(dsn, "list", "--json"))) == []


def test_list_pages_newest_first(dsn: str) -> None:
    with Store.open(dsn, min_size=1) as store:
        created = [store.create_conversation(model=f"model-{i}") for i in range(5)]
        store.add_messages(created[0], [("user", "a"), ("assistant", "b")])
    newest_first = [str(conversation_id) for conversation_id in reversed(created)]

    first = json.loads(stdout_of(run_cli(dsn, "list", "--json", "--limit", "2")))
    assert [row["id"] for row in first] == newest_first[:2]
    assert [row["model"] for row in first] == ["model-4", "model-3"]
    assert all(row["started_at"].endswith("+00:00") for row in first)

    rest = run_cli(dsn, "list", "--json", "--limit", "10", "--before", first[-1]["id"])
    rows = json.loads(stdout_of(rest))
    assert [row["id"] for row in rows] == newest_first[2:]
    assert rows[-1]["message_count"] == 2

    text = stdout_of(run_cli(dsn, "list")).splitlines()
    assert text[0].split() == ["id", "started", "at", "messages", "model"]
    assert [line.split()[0] for line in text[1:]] == newest_first
    assert text[-1].split()[-2:] == ["2", "model-0"]


def test_list_escapes_control_characters(dsn: str) -> None:
    with Store.open(dsn, min_size=1) as store:
        store.create_conversation(model="evil\x1b[2Jmodel\nsecond line")
    text = stdout_of(run_cli(dsn, "list"))
    assert "\x1b" not in text
    assert text.splitlines()[1].endswith("evil\\x1b[2Jmodel\\nsecond line")


def test_list_before_missing_conversation(dsn: str) -> None:
    result = run_cli(dsn, "list", "--before", MISSING_ID)
    assert_one_error_line(result, 3, f"conversation {MISSING_ID} not found")
    assert result.stdout == b""


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
def test_list_invalid_limit(dsn: str, limit: str) -> None:
    result = run_cli(dsn, "list", "--limit", limit)
    assert_one_error_line(result, 2, "--limit", "from 1 to 100")


def test_list_unmigrated_database(empty_db: psycopg.Connection[Any], dsn: str) -> None:
    result = run_cli(dsn, "list")
    assert_one_error_line(
        result, 1, 'relation "conversations" does not exist', "hwlab-sql migrate"
    )


def test_show_text_and_json(dsn: str, tmp_path: Path) -> None:
    (conversation_id,) = import_ids(
        dsn, write_transcript(tmp_path / "chat.json", HARD_MESSAGES)
    )
    document = json.loads(stdout_of(run_cli(dsn, "show", "--json", conversation_id)))
    assert document["id"] == conversation_id
    assert document["model"] == "gpt-4o"
    assert [m["role"] for m in document["messages"]] == [
        m["role"] for m in HARD_MESSAGES
    ]
    assert [m["content"] for m in document["messages"]] == [
        m["content"] for m in HARD_MESSAGES
    ]
    assert all(UUID(m["id"]) for m in document["messages"])

    text = stdout_of(run_cli(dsn, "show", conversation_id))
    assert text.startswith(f"conversation  {conversation_id}\nmodel         gpt-4o\n")
    assert f"messages      {len(HARD_MESSAGES)}\n" in text
    assert "\n[3] user  " in text
    assert "\n    '); DROP TABLE conversations; --\n" in text
    assert "\n    line one\n    line two\\r\n    line three\n" in text
    assert "\x1b" not in text
    assert "escape \\x1b[31mred\\x1b[0m, bell \\x07, del \\x7f" in text


@pytest.mark.parametrize("command", ["show", "export"])
def test_missing_conversation(dsn: str, command: str) -> None:
    result = run_cli(dsn, command, MISSING_ID)
    assert_one_error_line(result, 3, f"conversation {MISSING_ID} not found")
    assert result.stdout == b""


@pytest.mark.parametrize("command", ["show", "export"])
@pytest.mark.parametrize("bad_id", ["42", "not-a-uuid", "{" + MISSING_ID + "}", ""])
def test_malformed_id(dsn: str, command: str, bad_id: str) -> None:
    result = run_cli(dsn, command, bad_id)
    assert_one_error_line(result, 2, "is not a conversation id", repr(bad_id))
    assert result.stdout == b""


# import and export


def test_import_export_round_trip(
    db: psycopg.Connection[Any], dsn: str, tmp_path: Path
) -> None:
    source = write_transcript(tmp_path / "hard.json", HARD_MESSAGES)
    (first_id,) = import_ids(dsn, source)
    exported = run_cli(dsn, "export", first_id)
    assert exported.returncode == 0, exported.stderr

    # The export is the library's transcript JSON of exactly what was imported.
    expected = parse_transcript(source.read_bytes())
    assert parse_transcript(exported.stdout) == expected
    stored = db.execute(
        "SELECT role, content FROM messages WHERE conversation_id = %s ORDER BY seq",
        (first_id,),
    ).fetchall()
    assert stored == list(expected.messages)

    # Importing the export and exporting again gives the same bytes.
    again = tmp_path / "again.json"
    again.write_bytes(exported.stdout)
    (second_id,) = import_ids(dsn, again)
    assert second_id != first_id
    assert run_cli(dsn, "export", second_id).stdout == exported.stdout


def test_export_bytes_ignore_locale(dsn: str, tmp_path: Path) -> None:
    (conversation_id,) = import_ids(
        dsn, write_transcript(tmp_path / "chat.json", HARD_MESSAGES)
    )
    with Store.open(dsn, min_size=1) as store:
        expected = transcript_json(store.get_conversation(conversation_id))
    ascii_env = {"PYTHONIOENCODING": "ascii", "LC_ALL": "C", "PYTHONUTF8": "0"}
    result = run_cli(dsn, "export", conversation_id, env=ascii_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected.encode("utf-8")


def test_import_example_and_stdin(dsn: str) -> None:
    example = ROOT / "examples" / "chat.json"
    from_file = import_ids(dsn, example)
    from_stdin = stdout_of(run_cli(dsn, "import", "-", stdin=example.read_bytes()))
    ids = [*from_file, *from_stdin.splitlines()]
    assert len(ids) == 2
    exports = [
        run_cli(dsn, "export", conversation_id).stdout for conversation_id in ids
    ]
    assert exports[0] == exports[1]
    assert exports[0] == example.read_bytes()


def test_import_several_files_in_order(dsn: str, tmp_path: Path) -> None:
    paths = [
        write_transcript(tmp_path / f"{i}.json", [{"role": "user", "content": str(i)}])
        for i in range(3)
    ]
    ids = import_ids(dsn, *paths)
    assert len(set(ids)) == 3
    for index, conversation_id in enumerate(ids):
        exported = json.loads(run_cli(dsn, "export", conversation_id).stdout)
        assert exported["messages"] == [{"role": "user", "content": str(index)}]


BAD_TRANSCRIPTS = [
    pytest.param(b'{"model": "gpt-4o", "messages": [', "invalid JSON", id="json"),
    pytest.param(
        b'{"messages": [{"role": "robot", "content": "hi"}]}',
        "messages[0].role: 'robot' is not a valid role",
        id="role",
    ),
    pytest.param(
        b'{"messages": [{"role": "user", "content": "a\\u0000b"}]}',
        "messages[0].content: contains a NUL character at index 1",
        id="nul",
    ),
    pytest.param(
        b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
        "lone surrogate",
        id="surrogate",
    ),
    pytest.param(b'{"model": "\x80"}', "not UTF-8 text", id="encoding"),
    pytest.param(b'[{"role": "user"}]', "expected a JSON object", id="array"),
    pytest.param(b'{"messages": [{"content": "hi"}]}', "role is missing", id="no-role"),
]


@pytest.mark.parametrize(("data", "expected"), BAD_TRANSCRIPTS)
def test_import_bad_file_stores_nothing(
    db: psycopg.Connection[Any], dsn: str, tmp_path: Path, data: bytes, expected: str
) -> None:
    good = write_transcript(tmp_path / "good.json", [{"role": "user", "content": "x"}])
    bad = tmp_path / "bad.json"
    bad.write_bytes(data)
    # The good file comes first, and is not stored either.
    result = run_cli(dsn, "import", str(good), str(bad))
    assert_one_error_line(result, 1, f"{bad}: ", expected)
    assert result.stdout == b""
    assert_nothing_stored(db)


def test_import_bad_stdin_stores_nothing(db: psycopg.Connection[Any], dsn: str) -> None:
    result = run_cli(dsn, "import", "-", stdin=b"not json")
    assert_one_error_line(result, 1, "<stdin>: invalid JSON")
    assert_nothing_stored(db)


def test_import_missing_file(
    db: psycopg.Connection[Any], dsn: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.json"
    result = run_cli(dsn, "import", str(missing))
    assert_one_error_line(result, 1, f"{missing}: cannot read the file: No such file")
    assert_nothing_stored(db)


# connection failures


@pytest.mark.parametrize("where", ["DATABASE_URL", "--dsn"])
@pytest.mark.parametrize("command", ["status", "list", "import"])
def test_closed_port_hides_password(where: str, command: str, tmp_path: Path) -> None:
    port = find_free_port()
    dsn = f"postgresql://someone:{PASSWORD}@127.0.0.1:{port}/chat"
    args = [command]
    if command == "import":
        args.append(str(ROOT / "examples" / "chat.json"))
    if where == "--dsn":
        result = run_cli(None, "--dsn", dsn, "--connect-timeout", "2", *args)
    else:
        result = run_cli(dsn, *args, "--connect-timeout", "2")
    assert_one_error_line(
        result, 1, f"cannot connect to 127.0.0.1:{port}/chat", "Connection refused"
    )
    assert PASSWORD.encode() not in result.stderr + result.stdout


def test_keyword_dsn_password_hidden() -> None:
    port = find_free_port()
    dsn = f"host=127.0.0.1 port={port} user=someone password={PASSWORD}"
    result = run_cli(dsn, "list", "--connect-timeout", "2")
    assert_one_error_line(result, 1, f"127.0.0.1:{port}")
    assert PASSWORD.encode() not in result.stderr + result.stdout


def test_unparsable_dsn_hides_password() -> None:
    result = run_cli(f"postgresql//u:{PASSWORD}@127.0.0.1 = =", "status")
    assert_one_error_line(result, 1, "dsn: cannot be parsed")
    assert PASSWORD.encode() not in result.stderr


def test_dsn_typed_as_id_hides_password() -> None:
    # The error shows at most 60 characters of the value, which here ends
    # inside the password, before the @ that marks where it ends.
    dsn = f"postgresql://someone:{PASSWORD * 2}@127.0.0.1/chat"
    result = run_cli(None, "show", dsn)
    assert_one_error_line(result, 2, "is not a conversation id")
    assert b"s3cret" not in result.stderr


def test_import_keeps_going_when_output_closes(
    tmp_path: Path, dsn: str, db: psycopg.Connection[Any]
) -> None:
    """A reader that goes away, such as head, does not cut the import short."""
    path = write_transcript(tmp_path / "chat.json", [{"role": "user", "content": "x"}])
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": dsn}
    with subprocess.Popen(
        [sys.executable, "-m", "hwlab_sql", "import", *[str(path)] * 5],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=ROOT,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        errors = process.stderr.read()
        process.wait(timeout=60)
    assert process.returncode == 0
    assert errors == b""
    assert count_rows(db, "conversations") == 5


def test_list_before_reads_one_summary(tmp_path: Path, dsn: str) -> None:
    path = write_transcript(tmp_path / "chat.json", [{"role": "user", "content": "x"}])
    ids = import_ids(dsn, path, path, path)
    result = run_cli(dsn, "list", "--json", "--before", ids[-1])
    assert result.returncode == 0
    listed = [item["id"] for item in json.loads(stdout_of(result))]
    assert listed == list(reversed(ids[:-1]))
    missing = run_cli(dsn, "list", "--before", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 3
