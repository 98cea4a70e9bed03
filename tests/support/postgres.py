"""A real PostgreSQL server for the tests, started on a free port in a temporary folder. Root may
not run it, so it runs as the `postgres` user, which `initdb` and `pg_ctl` need."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.ports import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (make test installs it)")
    return found[-1]


class Postgres:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "pg"
        self.port = free_port()
        self.url = f"postgresql://edgeloop@127.0.0.1:{self.port}/postgres"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> Postgres:
        self.dir.mkdir(parents=True)
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        run = lambda *args: subprocess.run([*self._as_postgres, *args], check=True, capture_output=True)  # noqa: E731
        run(_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "edgeloop")
        return self.resume()

    def resume(self) -> Postgres:
        """Start the server on its data folder and port: first from `start`, again after `stop`."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [_bin("pg_ctl"), "-D", str(self.dir), "-o", options, "-w", "-l", str(self.dir / "log"), "start"]
        subprocess.run([*self._as_postgres, *pg_ctl], check=True, capture_output=True)
        return self

    def stop(self) -> None:
        subprocess.run(
            [*self._as_postgres, _bin("pg_ctl"), "-D", str(self.dir), "-m", "fast", "stop"], capture_output=True
        )
