"""Find a reachable PostgreSQL server, or run a throwaway one, for tests.

`reachable_conninfo` checks the server that the environment points at.
`ThrowawayServer` runs a private server in temporary directories, for tests that
stop or restart the server or need a database of their own.
"""

from __future__ import annotations

import logging
import math
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

logger = logging.getLogger(__name__)

StopMode = Literal["smart", "fast", "immediate"]

# The PostgreSQL server exits when started as root, so a root caller runs the server
# binaries as the first of these system users that exists.
UNPRIVILEGED_USERS = ("postgres", "nobody")

# Maximum seconds that initdb may take. A generous bound, not a measurement.
INITDB_TIMEOUT = 120.0

# Extra seconds granted to pg_ctl beyond its own -t timeout before it is killed.
PG_CTL_GRACE = 10.0

LOG_TAIL_LINES = 20


def reachable_conninfo(*, timeout: float = 3.0) -> str | None:
    """Connect once to the server that the environment names and return its conninfo.

    The server is the one DATABASE_URL names when that variable is set and not
    empty. Otherwise it is the one that the empty conninfo "" reaches, which libpq
    completes from the PG* variables and its defaults. Returns DATABASE_URL or ""
    when the connection succeeds, and None when it fails, for example because no
    server listens or authentication fails. The failure is logged without any
    password.

    ``timeout`` is passed as connect_timeout, which libpq (and psycopg) count in
    whole seconds with a minimum of 2, so it is rounded up and raised to 2.

    Raises ValueError when DATABASE_URL is not a valid connection string or URI.
    The message leaves out the value because it may contain a password.
    """
    database_url = os.environ.get("DATABASE_URL", "")
    conninfo = database_url
    source = "DATABASE_URL" if database_url else "PG* variables and libpq defaults"
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        # psycopg's message quotes the string, password included.
        raise ValueError(
            "DATABASE_URL is not a valid libpq connection string or URI. Use a URI"
            " such as 'postgresql://user@127.0.0.1:5432/dbname' or key=value pairs"
            " such as 'host=127.0.0.1 port=5432 dbname=dbname'"
        ) from None

    connect_timeout = max(2, math.ceil(timeout))
    try:
        connection = psycopg.connect(conninfo, connect_timeout=connect_timeout)
    except psycopg.OperationalError as error:
        passwords = [params.get("password"), os.environ.get("PGPASSWORD")]
        message = _redact(str(error), [str(p) for p in passwords if p])
        # An unset DATABASE_URL usually means that no server is expected.
        level = logging.WARNING if database_url else logging.INFO
        logger.log(level, "no PostgreSQL server reachable via %s: %s", source, message)
        return None
    connection.close()
    return conninfo


def _redact(text: str, secrets: Sequence[str]) -> str:
    """Replace each secret in ``text`` with *** and join its lines into one."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return " ".join(text.split())


class ThrowawayServerError(RuntimeError):
    """Failure to create, start or stop a ThrowawayServer."""


class ThrowawayServer:
    """PostgreSQL server in temporary directories that are removed on exit.

    Entering the context runs initdb (UTF8 encoding, C locale, trust
    authentication, superuser ``postgres``) and starts the server listening on
    127.0.0.1 only, with its Unix socket in a separate temporary directory.
    fsync is off, so a crash of the machine can corrupt the data.

    When the caller is root, initdb, pg_ctl and the server run as the first
    existing user of UNPRIVILEGED_USERS, which owns the temporary directories.
    That user must be able to enter the parent of those directories
    (``tempfile.gettempdir()``, which TMPDIR sets).

    Without ``with``, call start() and then cleanup() in a ``finally`` block.

    Args:
        port: TCP port to listen on. By default a port that is free on 127.0.0.1
            when the cluster is created.
        bin_dir: Directory containing initdb and pg_ctl. By default the directory
            of initdb on PATH, else ``pg_config --bindir``, else the newest
            ``/usr/lib/postgresql/*/bin`` (the Debian layout).
        timeout: Maximum seconds that pg_ctl waits for the server to start or stop.
        password: When given, the ``postgres`` superuser gets this password and
            every connection must present it (scram-sha-256), and conninfo
            carries it; by default every connection is trusted.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        bin_dir: str | os.PathLike[str] | None = None,
        timeout: int = 30,
        password: str | None = None,
    ) -> None:
        self._requested_port = port
        self._password = password
        self._bin_dir = Path(bin_dir) if bin_dir is not None else find_bin_dir()
        self._timeout = timeout
        self._account = _unprivileged_account() if os.geteuid() == 0 else None
        self._port: int | None = None
        self._base_dir: Path | None = None
        self._socket_dir: Path | None = None
        self._cleaned_up = False

    def __enter__(self) -> ThrowawayServer:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()

    @property
    def port(self) -> int:
        """TCP port on 127.0.0.1, fixed when the cluster is created."""
        if self._port is None:
            raise ThrowawayServerError("the server has no port until start() is called")
        return self._port

    @property
    def conninfo(self) -> str:
        """libpq key=value string for the ``postgres`` database as ``postgres``."""
        return self._conninfo_for("postgres")

    @property
    def data_dir(self) -> Path:
        """Data directory that initdb creates."""
        return self._require_base_dir() / "data"

    @property
    def log_file(self) -> Path:
        """Server log file that pg_ctl writes."""
        return self._require_base_dir() / "server.log"

    @property
    def socket_dir(self) -> Path:
        """Directory containing the server's Unix socket."""
        if self._socket_dir is None:
            raise ThrowawayServerError(
                "the server has no socket directory until start() is called"
            )
        return self._socket_dir

    @property
    def running(self) -> bool:
        """True when the data directory contains postmaster.pid, the server's lock file.

        A server that crashed can leave the file behind.
        """
        if self._base_dir is None:
            return False
        return (self.data_dir / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server, creating the cluster first if this is the first start.

        Raises ThrowawayServerError when initdb or pg_ctl fails or times out, or
        when the server is already running or was cleaned up.
        """
        if self._cleaned_up:
            raise ThrowawayServerError(
                "this ThrowawayServer was cleaned up and cannot start again."
                " Create a new one"
            )
        if self._base_dir is None:
            self._create_cluster()
        if self.running:
            raise ThrowawayServerError(
                f"the server in {self.data_dir} is already running"
            )
        command = [
            str(self._bin_dir / "pg_ctl"),
            "start",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--wait",
            "--timeout",
            str(self._timeout),
        ]
        self._run(command, timeout=self._timeout + PG_CTL_GRACE)
        logger.info("started throwaway PostgreSQL server on 127.0.0.1:%d", self.port)

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server with the pg_ctl shutdown ``mode``, if it is running.

        Raises ThrowawayServerError when pg_ctl fails or times out.
        """
        if not self.running:
            return
        command = [
            str(self._bin_dir / "pg_ctl"),
            "stop",
            "--pgdata",
            str(self.data_dir),
            "--mode",
            mode,
            "--wait",
            "--timeout",
            str(self._timeout),
        ]
        self._run(command, timeout=self._timeout + PG_CTL_GRACE)
        logger.info("stopped throwaway PostgreSQL server on 127.0.0.1:%d", self.port)

    def restart(self, mode: StopMode = "fast") -> None:
        """Stop the server and start it again on the same port and data directory.

        Open connections break, as they do when a real server restarts.
        """
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        """Create a database owned by ``postgres`` and return a conninfo for it."""
        if not self.running:
            raise ThrowawayServerError(
                f"cannot create database {name!r}: the server is not running"
            )
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute(statement)
        return self._conninfo_for(name)

    def cleanup(self) -> None:
        """Stop the server if it runs and remove every directory this object made.

        Calling it again does nothing. Failures to stop the server or to remove a
        directory are logged and not raised, so that they do not hide the error of
        a failed test.
        """
        if self._cleaned_up:
            return
        self._cleaned_up = True
        try:
            self._stop_for_cleanup()
        finally:
            for directory in (self._base_dir, self._socket_dir):
                if directory is not None:
                    _remove_directory(directory)

    def _stop_for_cleanup(self) -> None:
        if not self.running:
            return
        try:
            self.stop("fast")
        except ThrowawayServerError:
            logger.exception("fast shutdown failed, trying immediate shutdown")
        else:
            return
        try:
            self.stop("immediate")
        except ThrowawayServerError:
            # The data directory is removed anyway. PostgreSQL 15's postmaster
            # shuts itself down once it finds its lock file gone.
            logger.exception(
                "immediate shutdown failed, removing the data directory %s of a"
                " running server",
                self.data_dir,
            )

    def _create_cluster(self) -> None:
        # Each directory is recorded before anything else can fail, so that
        # cleanup() removes it.
        self._base_dir = self._make_directory("hwlab-pg-")
        self._socket_dir = self._make_directory("hwlab-pgsock-")
        self._port = self._requested_port or find_free_port()
        command = [
            str(self._bin_dir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--encoding=UTF8",
            "--locale=C",
            "--username=postgres",
            "--no-sync",
        ]
        if self._password is None:
            command.append("--auth=trust")
        else:
            password_file = self._require_base_dir() / "password"
            password_file.write_text(self._password + "\n", encoding="utf-8")
            if self._account is not None:
                os.chown(password_file, self._account.pw_uid, self._account.pw_gid)
            command += ["--auth=scram-sha-256", f"--pwfile={password_file}"]
        self._run(command, timeout=INITDB_TIMEOUT)
        self._append_settings(
            {
                "listen_addresses": "127.0.0.1",
                "port": str(self._port),
                "unix_socket_directories": str(self._socket_dir),
                "fsync": "off",
            }
        )

    def _make_directory(self, prefix: str) -> Path:
        directory = Path(tempfile.mkdtemp(prefix=prefix))
        if self._account is not None:
            os.chown(directory, self._account.pw_uid, self._account.pw_gid)
        return directory

    def _append_settings(self, settings: dict[str, str]) -> None:
        # Later lines of postgresql.conf override earlier ones. Appending keeps the
        # file's owner, which matters when root writes it for another user.
        lines = ["", "# Settings of ThrowawayServer"]
        for name, value in settings.items():
            quoted = value.replace("'", "''")
            lines.append(f"{name} = '{quoted}'")
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")

    def _run(self, command: list[str], *, timeout: float) -> None:
        account = self._account
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self._base_dir,
                timeout=timeout,
                check=False,
                user=account.pw_uid if account is not None else None,
                group=account.pw_gid if account is not None else None,
                extra_groups=[] if account is not None else None,
            )
        except subprocess.TimeoutExpired as error:
            outcome = f"timed out after {timeout:g} s"
            raise ThrowawayServerError(
                self._describe_failure(command, outcome, error.output)
            ) from None
        except OSError as error:
            raise ThrowawayServerError(
                self._describe_failure(command, f"could not run: {error}", None)
            ) from None
        if result.returncode != 0:
            outcome = f"failed with exit status {result.returncode}"
            raise ThrowawayServerError(
                self._describe_failure(command, outcome, result.stdout)
            )

    def _describe_failure(
        self, command: list[str], outcome: str, output: bytes | str | None
    ) -> str:
        program = Path(command[0]).name
        if program == "pg_ctl":
            program = f"pg_ctl {command[1]}"
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        parts = [
            f"{program} {outcome}.",
            f"Command: {shlex.join(command)}",
            "Output (stdout and stderr):",
            (output or "").rstrip() or "(none)",
        ]
        if self._base_dir is not None and self.log_file.exists():
            parts.append(f"Last {LOG_TAIL_LINES} lines of {self.log_file}:")
            parts.append(_tail(self.log_file, LOG_TAIL_LINES) or "(empty)")
        return "\n".join(parts)

    def _conninfo_for(self, dbname: str) -> str:
        return make_conninfo(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=dbname,
            password=self._password,
        )

    def _require_base_dir(self) -> Path:
        if self._base_dir is None:
            raise ThrowawayServerError(
                "the server has no data directory until start() is called"
            )
        return self._base_dir


def find_free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 at the time of the call.

    NOTE: another process can take the port before the server binds it. The
    server then fails to start and the error shows "could not bind" in the log.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_bin_dir() -> Path:
    """Return the directory of the PostgreSQL server binaries (initdb, pg_ctl).

    Looks at initdb on PATH (following symlinks), then ``pg_config --bindir``,
    then the newest ``/usr/lib/postgresql/<version>/bin`` (the Debian layout).
    Raises ThrowawayServerError when none contains both initdb and pg_ctl.
    """
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            result = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            logger.warning("pg_config --bindir failed", exc_info=True)
        else:
            candidates.append(Path(result.stdout.strip()))
    debian_dirs = Path("/usr/lib/postgresql").glob("*/bin")
    candidates.extend(sorted(debian_dirs, key=_major_version, reverse=True))
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise ThrowawayServerError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, via"
        " pg_config or in /usr/lib/postgresql/*/bin. Install the PostgreSQL server"
        " or pass bin_dir"
    )


def _major_version(bin_dir: Path) -> int:
    version = bin_dir.parent.name
    return int(version) if version.isdigit() else -1


def _unprivileged_account() -> pwd.struct_passwd:
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ThrowawayServerError(
        "the PostgreSQL server cannot run as root, and none of the users"
        f" {', '.join(UNPRIVILEGED_USERS)} exists to run it. Create one of them or"
        " run as a normal user"
    )


def _tail(path: Path, count: int) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        return f"(could not read: {error})"
    return "\n".join(lines[-count:])


def _remove_directory(directory: Path) -> None:
    try:
        shutil.rmtree(directory)
    except FileNotFoundError:
        return
    except OSError:
        logger.exception("could not remove directory %s", directory)
        return
    logger.debug("removed directory %s", directory)
