"""A PostgreSQL of a test's own, in a temporary directory on a free port (never the machine's one on 5432),
that the test can stop and start again. Skips the test when no PostgreSQL binaries are installed."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def postgres_bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivatePostgres:
    """initdb + pg_ctl as the `postgres` user when run as root (initdb refuses root), trust authentication on
    127.0.0.1 only."""

    def __init__(self, database="kotatsu"):
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            pytest.skip("no PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb) on this machine")
        self.bin_dir = bin_dir
        # Directly under /tmp, which every user can traverse: the postgres user needs to reach it.
        self.work_dir = Path(tempfile.mkdtemp(prefix="kotatsu-postgres-"))
        self.data_dir = self.work_dir / "data"
        self.port = free_port()
        self.database = database
        self.url = f"postgres://kotatsu@127.0.0.1:{self.port}/{database}"
        self.run_as = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user to run initdb as")
            self.run_as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.work_dir, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", self.data_dir, "-A", "trust", "-U", "kotatsu", "--no-sync", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "kotatsu", database)

    def _run(self, program, *args):
        command = [*self.run_as, str(self.bin_dir / program), *map(str, args)]
        subprocess.run(command, check=True, capture_output=True, cwd=self.work_dir)

    def start(self):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.work_dir} -c fsync=off"
        self._run("pg_ctl", "-D", self.data_dir, "-o", options, "-l", self.work_dir / "postgres.log", "-w", "start")

    def client_connections(self):
        """How many client connections the server holds now."""
        query = "select count(*) from pg_stat_activity where backend_type = 'client backend'"
        command = [*self.run_as, str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "kotatsu",
                   "-d", self.database, "-Atc", query]
        return int(subprocess.run(command, check=True, capture_output=True, text=True, cwd=self.work_dir).stdout) - 1  # not psql's

    def stop(self):
        """Fast shutdown: every connection is cut, as when the database server restarts."""
        self._run("pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop")

    def close(self):
        subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
                       capture_output=True, cwd=self.work_dir)
        shutil.rmtree(self.work_dir, ignore_errors=True)
