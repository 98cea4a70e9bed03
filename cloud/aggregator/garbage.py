"""The garbage collector set for a process that ingests. Parsing a batch of predictions allocates a few
dicts and lists per prediction; at Python's default (a young collection every 700 new containers, and
a full one, over every object the process holds, every hundred of those) collecting cost about a sixth
of the ingest's throughput, which is bound by the interpreter's one lock. Objects alive once the
service is built are kept out of every collection (`gc.freeze`), and the young generation is collected
every GEN0_THRESHOLD containers: a few MB more held between collections."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

GEN0_THRESHOLD = 50_000


def tune_for_ingest() -> None:
    """Call once the process's long-lived objects exist (its modules, app and connections)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    log.debug("gc: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())
