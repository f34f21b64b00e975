"""After start-up, take what is alive out of the cyclic garbage collector's sight.

A server process holds about 150,000 objects once started (modules, the app, its routes, pydantic
models, SQLAlchemy's mappings). Each full collection walked them all: about 70 ms on this machine,
during which no request moved; under load one came every few seconds, and it made the slowest
percentile of every benchmark row. ``gc.freeze()`` moves them to a permanent generation: full
collections then walk only what was created since. Objects frozen are still freed by reference
counting; only cycles among them would stay, and start-up objects live as long as the process.

Then the youngest generation is collected after 10,000 more objects than were freed, not 700:
a request makes and frees thousands of objects (reference counting frees them), and with 32
creates in flight the collector ran every 11 creates, about 7 µs of each (bench/gc_pause.py);
at 10,000 it does not run in that load at all. Cycles are still collected, in bigger batches.
"""

from __future__ import annotations

import gc

YOUNGEST = 10_000  # tracked objects allocated and not yet freed between young collections


def settle() -> None:
    """Collect start-up garbage once, then freeze what is left (call it once, after start-up)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST, older, oldest)
