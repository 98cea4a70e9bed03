"""The registry's key pair in the tests: every device the tests start trusts its public key, and what
the tests announce is signed with its private key, as the registry signs."""

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from common import signing


@cache
def registry_keys() -> tuple[Path, Path]:
    """(private, public): one pair per test process."""
    folder = Path(tempfile.mkdtemp(prefix="edgeloop-keys-"))
    atexit.register(shutil.rmtree, folder, True)
    signing.generate(folder / "registry.key", folder / "registry.pub")
    return folder / "registry.key", folder / "registry.pub"
