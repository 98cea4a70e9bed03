"""`python -m cloud serve` as a process the tests start, and its Prometheus counters read over HTTP."""

import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.keys import registry_keys
from tests.support.paths import ROOT


def start_serve(broker, db: str, data: Path, port: int, *extra: object, **popen: object) -> subprocess.Popen:
    """The service signs its announcements with the tests' registry key, which the tests' devices trust;
    `popen`: subprocess.Popen's own arguments (stderr=subprocess.PIPE, text=True to read its log)."""
    args = ["--broker", broker.url, "--db", db, "--data-dir", data, "--http-port", port, "--http-host", "127.0.0.1"]
    args += ["--signing-key", registry_keys()[0]]
    args += [*extra]
    return subprocess.Popen([sys.executable, "-m", "cloud", "serve", *map(str, args)], cwd=ROOT, **popen)


def metric(port: int, name: str) -> int:
    """The counter `edgeloop_{name}_total`, added up over its labels (the rejections' reasons); -1 while the
    service does not answer."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1
    values = [
        line.split()[-1]
        for line in text.splitlines()
        if line.startswith((f"edgeloop_{name}_total ", f"edgeloop_{name}_total{{"))
    ]
    return int(sum(float(v) for v in values))
