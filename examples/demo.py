"""Import the example transcript into PostgreSQL and print what was stored.

The server is the one DATABASE_URL, or else the PG* variables and libpq's
defaults, reach. When none responds, a throwaway server is started from the
installed PostgreSQL binaries and removed at the end.

Run it with ``make demo``, or ``python examples/demo.py [TRANSCRIPT.json]``.
"""

from __future__ import annotations

import os
import sys
from datetime import timezone
from pathlib import Path

# The throwaway-server helper lives in the repository's tools/ folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hwlab_sql import Conversation, ConversationSummary, HwlabSqlError, Store
from hwlab_sql.transcripts import (
    Transcript,
    import_transcript,
    parse_transcript,
)
from tools.pgserver import ThrowawayServer, reachable_conninfo

EXAMPLE = Path(__file__).resolve().parent / "chat.json"


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else EXAMPLE
    transcript = parse_transcript(path.read_bytes(), source=str(path))

    dsn = reachable_conninfo()
    if dsn is not None:
        where = (
            "DATABASE_URL names"
            if os.environ.get("DATABASE_URL")
            else "the PG* variables and libpq's defaults reach"
        )
        print(f"Using the server that {where}.")
        run(dsn, path, transcript)
        return 0

    print("No server answered; starting a throwaway PostgreSQL.")
    with ThrowawayServer() as server:
        run(server.conninfo, path, transcript)
    print("Throwaway server stopped and removed.")
    return 0


def run(dsn: str, path: Path, transcript: Transcript) -> None:
    with Store.open(dsn, min_size=1, max_size=2) as store:
        print(f"Connected: {store!r}")
        applied = store.run_migrations()
        print(
            f"Schema scripts applied now: {', '.join(applied) or 'none (up to date)'}"
        )

        conversation_id = import_transcript(store, transcript)
        print(f"Imported {path.name} as conversation {conversation_id}.\n")

        print_summaries(store.list_conversations(limit=10))
        print()
        print_conversation(store.get_conversation(conversation_id))


def print_summaries(summaries: list[ConversationSummary]) -> None:
    print("Newest conversations:")
    print(f"  {'id':36}  {'started at (UTC)':19}  {'model':12}  messages")
    for summary in summaries:
        started = summary.started_at.astimezone(timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        print(
            f"  {summary.id}  {started}  {summary.model[:12]:12}"
            f"  {summary.message_count:>8}"
        )


def print_conversation(conversation: Conversation) -> None:
    print(f"Conversation {conversation.id} with {conversation.model or 'no model'}:")
    for message in conversation.messages:
        print(f"  [{message.role}] {message.content}")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (HwlabSqlError, ValueError, OSError) as exc:
        # The library's messages name the problem and the fix; a traceback adds
        # nothing for someone trying the demo.
        print(f"demo: {exc}", file=sys.stderr)
        sys.exit(1)
