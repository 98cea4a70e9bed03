"""The ingest's garbage collector settings, in a process of their own (they are process-wide)."""

import subprocess
import sys

from tests.support.paths import ROOT

PROBE = """
import gc
from cloud.aggregator.garbage import GEN0_THRESHOLD, tune_for_ingest
before = gc.get_threshold()
tune_for_ingest()
after = gc.get_threshold()
assert after == (GEN0_THRESHOLD, *before[1:]), (before, after)
assert gc.get_freeze_count() > 1_000, gc.get_freeze_count()  # the modules' objects, out of every collection
garbage = []
garbage.append(garbage)  # a cycle made after tuning is still collected
del garbage
assert gc.collect() >= 1
print("tuned", after[0])
"""


def test_tuning_raises_the_young_threshold_freezes_what_exists_and_still_collects_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tuned 50000"
