"""The command line of hwlab-sql: subcommands, options and their help."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import NoReturn
from uuid import UUID

from ._checks import MAX_LIST_LIMIT, to_uuid
from ._cli_errors import EXIT_STATUS_HELP, EXIT_USAGE, redact
from ._sql import QUERIES_DIR, SCHEMA_DIR

DEFAULT_LIMIT = 20
DEFAULT_CONNECT_TIMEOUT = 10

_DESCRIPTION = """\
Manage the hwlab_sql schema, check its named queries against a server, and
list, show, import and export conversations.

The server and database are the ones --dsn names, else DATABASE_URL, else the
PG* variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD) and libpq's
defaults. Keep passwords in DATABASE_URL, PGPASSWORD or ~/.pgpass rather than
in --dsn, because other users of the machine can read command lines.
"""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors fit on one line, without passwords."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: error: {redact(message)}; see '{self.prog} --help'\n",
        )


def build_parser() -> Parser:
    """Return the parser of the hwlab-sql command line."""
    parser = Parser(
        prog="hwlab-sql",
        description=_DESCRIPTION,
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_connection_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = _add_command(
        commands,
        "migrate",
        "apply the schema scripts not applied yet",
        "Apply the schema scripts that the database has not recorded yet, in"
        " order and each in its own transaction, and print their file names."
        " Processes that run it at once wait for each other. Nothing is applied"
        " when an applied script was edited (exit status 4).",
    )
    _add_schema_option(migrate)

    status = _add_command(
        commands,
        "status",
        "show which schema scripts are applied, pending or edited",
        "Print each schema script with its state: applied, pending (not applied"
        " yet) or edited (changed on disk since it was applied, exit status 4)."
        " Changes nothing.",
    )
    _add_schema_option(status)

    check = _add_command(
        commands,
        "check",
        "prepare every named query on the server without running it",
        "Have the server parse and analyse (PREPARE) every named query, and print"
        " FILE:LINE: QUERY: MESSAGE for each that fails. LINE is the line the"
        " server's error points at, else the query's -- name: line. No query is"
        " executed, so script queries (-- name: ...#), which may hold DDL that"
        " cannot be prepared, are reported as skipped. Migrate the database"
        " first, because a query that needs a pending schema script fails.",
    )
    check.add_argument(
        "--queries",
        type=Path,
        default=QUERIES_DIR,
        metavar="DIR",
        help=f"directory of .sql files with named queries (default: {QUERIES_DIR})",
    )

    listing = _add_command(
        commands,
        "list",
        "list conversations, newest first",
        "Print conversations newest first: id, start time (UTC), number of"
        " messages and model.",
    )
    listing.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"number of conversations to print, 1 to {MAX_LIST_LIMIT}"
        f" (default: {DEFAULT_LIMIT})",
    )
    listing.add_argument(
        "--before",
        type=_conversation_id,
        metavar="ID",
        help="print the conversations older than conversation ID, to page on from"
        " the last id of the previous page",
    )
    _add_json_option(
        listing, "a JSON array of objects with id, started_at, model and message_count"
    )

    show = _add_command(
        commands,
        "show",
        "print one conversation with its messages",
        "Print a conversation and its messages in the order they were added."
        " Control characters in the text are shown as escapes such as \\x1b;"
        " use --json or export for the exact text.",
    )
    show.add_argument("id", type=_conversation_id, metavar="ID", help="conversation id")
    _add_json_option(show, "a JSON object with the messages' ids, times and exact text")

    import_command = _add_command(
        commands,
        "import",
        "store chat transcripts as new conversations",
        "Store each FILE, an OpenAI-style chat transcript such as"
        ' {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},'
        " as a new conversation and print the new ids, one a line in the order of"
        " the files. Every file is checked before the first is stored, so an"
        " invalid file stores nothing. Each file is then stored in its own"
        " transaction.",
    )
    import_command.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="transcript file in UTF-8 JSON, or - for standard input",
    )

    export = _add_command(
        commands,
        "export",
        "print a conversation as a chat transcript",
        "Print a conversation in the transcript format that import reads, as UTF-8"
        " JSON. Importing the output and exporting it again gives the same bytes.",
    )
    export.add_argument(
        "id", type=_conversation_id, metavar="ID", help="conversation id"
    )
    return parser


def _add_command(
    commands: argparse._SubParsersAction[Parser],
    name: str,
    summary: str,
    description: str,
) -> Parser:
    command = commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, width=79),
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The options are accepted before and after the command name.
    _add_connection_options(command, suppress=True)
    return command


def _add_connection_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # After the command name the defaults are suppressed, so that they do not
    # overwrite a value given before it.
    parser.add_argument(
        "--dsn",
        default=argparse.SUPPRESS if suppress else None,
        help="server and database, as a libpq URI (postgresql://user@host:5432/db)"
        " or key=value string (default: DATABASE_URL, else the PG* variables)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=argparse.SUPPRESS if suppress else DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
        help="seconds to wait for the server to accept a connection, 2 or more"
        " because psycopg raises lower values to 2"
        f" (default: {DEFAULT_CONNECT_TIMEOUT})",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log to standard error: -v the applied schema scripts and opened"
        " connection pools, -vv also every query with its time in milliseconds"
        " and the traceback of an unexpected error",
    )


def _add_schema_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schema",
        type=Path,
        default=SCHEMA_DIR,
        metavar="DIR",
        help=f"directory of the NNN_description.sql scripts (default: {SCHEMA_DIR})",
    )


def _add_json_option(parser: argparse.ArgumentParser, shape: str) -> None:
    parser.add_argument(
        "--json", action="store_true", help=f"print {shape}, with times in UTC"
    )


def _conversation_id(text: str) -> UUID:
    try:
        return to_uuid(text)
    except ValueError:
        # Redacted before it is shortened, which could cut off the marks of a
        # password.
        text = redact(text)
        quoted = repr(text) if len(text) <= 60 else repr(text[:57] + "...")
        raise argparse.ArgumentTypeError(
            f"{quoted} is not a conversation id; expected a UUID such as"
            " 0b7a7d8e-4c1f-4d5a-9a57-2f1c6f3e8d10"
        ) from None


def _limit(text: str) -> int:
    value = _whole_number(text)
    if value is None or not 1 <= value <= MAX_LIST_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to {MAX_LIST_LIMIT};"
            " page through more with --before"
        )
    return value


def _seconds(text: str) -> int:
    value = _whole_number(text)
    if value is None or value < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 2 or more")
    return value


def _whole_number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
