"""Running edgeloop's commands as a user would: `python -m …` in a fresh process, options as flags."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def run_cli(module: str, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` as a user would, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{module} {args} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def as_flags(options: dict[str, object]) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{key.replace('_', '-')}", str(value))]
