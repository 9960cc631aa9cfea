"""The hwlab-sql command: schema, query checks and conversations, for operators.

Every statement it sends is a named query of ``queries/`` or a schema script.
``check`` prepares the named queries without executing them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from . import _cli_output as output
from . import _core
from ._cli_args import build_parser
from ._cli_errors import (
    EXIT_CHECK_FAILED,
    EXIT_EDITED,
    CommandError,
    error_line,
    exit_status,
)
from ._conninfo import describe, raise_connection_failed
from ._query_check import check_queries
from ._sql import SCHEMA_DIR
from .migrations import migration_status, run_migrations, schema_scripts
from .models import ConversationSummary
from .store import Store, queries
from .transcripts import (
    Transcript,
    import_transcript,
    parse_transcript,
    transcript_json,
)

Command = Callable[[argparse.Namespace, str], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run hwlab-sql with *argv* (default: sys.argv[1:]) and return the exit status."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    dsn = args.dsn if args.dsn is not None else os.environ.get("DATABASE_URL", "")
    try:
        return _COMMANDS[args.command](args, dsn)
    except BrokenPipeError:
        # The reader, such as head, went away. Python would report the pipe
        # again when it flushes stdout at exit, so point stdout elsewhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.verbose >= 2:
            raise
        print(f"hwlab-sql: error: {error_line(exc, dsn)}", file=sys.stderr)
        return exit_status(exc)


def _configure_logging(verbose: int) -> None:
    if verbose == 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hwlab-sql: %(message)s"))
    logger = logging.getLogger("hwlab_sql")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)


@contextmanager
def _connect(dsn: str, timeout: int) -> Iterator[psycopg.Connection[Any]]:
    describe(dsn)  # raises ValueError, without the dsn, when it cannot be parsed
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=timeout)
    except psycopg.OperationalError as exc:
        raise_connection_failed(dsn, exc)
    with conn:
        yield conn


def _open_store(dsn: str, timeout: int) -> Store:
    return Store.open(dsn, connect_timeout=timeout, min_size=1, max_size=1)


def _write(text: str) -> None:
    # UTF-8 whatever the locale, so that exported JSON imports again unchanged.
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


def _warn(text: str) -> None:
    print(f"hwlab-sql: {text}", file=sys.stderr)


def _migrate(args: argparse.Namespace, dsn: str) -> int:
    with _connect(dsn, args.connect_timeout) as conn:
        try:
            applied = run_migrations(conn, directory=args.schema)
        except psycopg.Error as exc:
            raise _name_failed_script(conn, args.schema, exc) from exc
    for script in applied:
        _write(f"applied {script.filename}\n")
    if not applied:
        _write("schema is up to date, nothing to apply\n")
    return 0


def _name_failed_script(
    conn: psycopg.Connection[Any], directory: Path, exc: psycopg.Error
) -> Exception:
    """Return *exc* as an error that names the first script not applied.

    Each script runs in its own transaction, so the one that failed is the
    first that is still pending. With the server's position of the error, the
    message also gives its line.
    """
    try:
        pending = [
            status.filename
            for status in migration_status(conn, directory=directory)
            if status.state == "pending"
        ]
    except psycopg.Error:
        return exc
    if not pending:
        return exc
    path = output.show_path(directory / pending[0])
    position = exc.diag.statement_position
    if position is None:
        return CommandError(
            f"{path} and the scripts after it were not applied: {error_line(exc)}"
        )
    # A script is sent whole, so the server counts characters from its start.
    script = next(s for s in schema_scripts(directory) if s.filename == pending[0])
    line = script.sql[: int(position) - 1].count("\n") + 1
    return CommandError(f"{path}:{line}: {error_line(exc)}")


def _status(args: argparse.Namespace, dsn: str) -> int:
    with _connect(dsn, args.connect_timeout) as conn:
        statuses = migration_status(conn, directory=args.schema)
    _write(output.status_text(statuses))
    edited = [status.filename for status in statuses if status.state == "edited"]
    if edited:
        print(
            "hwlab-sql: error: schema scripts edited after they were applied:"
            f" {', '.join(edited)}; restore them and put the change in a new script",
            file=sys.stderr,
        )
        return EXIT_EDITED
    return 0


def _check(args: argparse.Namespace, dsn: str) -> int:
    with _connect(dsn, args.connect_timeout) as conn:
        pending = [
            status.filename
            for status in migration_status(conn, directory=SCHEMA_DIR)
            if status.state == "pending"
        ]
        if pending:
            _warn(
                f"warning: schema scripts not applied yet: {', '.join(pending)};"
                " queries that need them fail until 'hwlab-sql migrate' runs"
            )
        checks = check_queries(conn, args.queries)
    _write(output.check_text(checks, args.queries))
    failed = any(check.outcome == "failed" for check in checks)
    return EXIT_CHECK_FAILED if failed else 0


def _list(args: argparse.Namespace, dsn: str) -> int:
    with _open_store(dsn, args.connect_timeout) as store:
        before = None
        if args.before is not None:
            before = _summary(store, args.before)
        summaries = store.list_conversations(args.limit, before=before)
    if args.json:
        _write(output.summaries_json(summaries))
    else:
        _write(output.summaries_text(summaries))
    return 0


def _summary(store: Store, conversation_id: str) -> ConversationSummary:
    """Return one conversation's summary through the public query object."""
    params = _core.id_params(conversation_id)
    with store.pool.connection() as conn:
        row = queries.get_conversation_summary(conn, **params)
    return ConversationSummary(*_core.require_found(row, params["conversation_id"]))


def _show(args: argparse.Namespace, dsn: str) -> int:
    with _open_store(dsn, args.connect_timeout) as store:
        conversation = store.get_conversation(args.id)
    if args.json:
        _write(output.conversation_json(conversation))
    else:
        _write(output.conversation_text(conversation))
    return 0


def _import(args: argparse.Namespace, dsn: str) -> int:
    # Every file is read and checked before the first is stored, so that an
    # invalid file stores nothing.
    transcripts = [_read_transcript(name) for name in args.files]
    output_error: OSError | None = None
    with _open_store(dsn, args.connect_timeout) as store:
        for index, transcript in enumerate(transcripts):
            try:
                new_id = import_transcript(store, transcript)
            except Exception:
                if index:
                    _warn(f"the first {index} of {len(transcripts)} files were stored")
                raise
            # Output that cannot be written must not stop the import halfway.
            if output_error is None:
                try:
                    _write(f"{new_id}\n")
                except OSError as exc:
                    output_error = exc
    if output_error is not None and not isinstance(output_error, BrokenPipeError):
        _warn(
            f"all {len(transcripts)} files were stored, but their ids could not"
            " be printed"
        )
        raise output_error
    return 0


def _read_transcript(name: str) -> Transcript:
    if name == "-":
        return parse_transcript(sys.stdin.buffer.read(), source="<stdin>")
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read the file: {exc.strerror}") from None
    return parse_transcript(data, source=name)


def _export(args: argparse.Namespace, dsn: str) -> int:
    with _open_store(dsn, args.connect_timeout) as store:
        conversation = store.get_conversation(args.id)
    _write(transcript_json(conversation))
    return 0


_COMMANDS: dict[str, Command] = {
    "migrate": _migrate,
    "status": _status,
    "check": _check,
    "list": _list,
    "show": _show,
    "import": _import,
    "export": _export,
}
