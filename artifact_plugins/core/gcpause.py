"""Pausing Python's cyclic garbage collector while many acyclic objects are built at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; it is back on afterwards if it was on before.

    Building a draft of 100,000 files makes the collector run its full, every-live-object pass
    again and again as the objects pile up (``add_dir`` 1.21 s instead of 0.77 s,
    ``benchmarks/bench_relog.py``). Entries, stats and paths form no reference cycles, so there
    is nothing for it to find; reference counting frees them as usual. Nests safely.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        # Straight to the oldest generation: otherwise the young collections that follow walk
        # every object the block made, twice, before they get there (~0.1 s after a
        # 100,000-file draft). Full collections still walk them; nothing escapes the collector.
        gc.freeze()
        gc.unfreeze()
        gc.enable()
