"""Every metric the process keeps, in one place (deploy/grafana-dashboard.json queries these).

Counters and histograms count in the process that saw the event: a task's creation in the API
process, its end in the worker that ran it (or the API that cancelled it). Scrape every process,
or run them with ``PROMETHEUS_MULTIPROC_DIR`` set to a directory they share, which makes any one
of them answer for all (prometheus-client's multiprocess mode). Sum over instances in queries.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.multiprocess import mark_process_dead

# Seconds: requests are milliseconds, waited-for ones (Prefer: wait, ?wait=) up to 60 s.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 60)
# Seconds from a task's creation to its end: the simulator's seconds to an upstream's minutes.
TASK_BUCKETS = (0.5, 1, 2, 4, 6, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)

HTTP_REQUESTS = Counter(
    "imagegate_http_requests", "HTTP requests answered", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "imagegate_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of its body)",
    ["route", "method"],
    buckets=REQUEST_BUCKETS,
)
TASKS_CREATED = Counter("imagegate_tasks_created", "Tasks created", ["model", "speed"])
TASKS_COMPLETED = Counter(
    "imagegate_tasks_completed", "Tasks completed", ["model", "speed", "provider"]
)
TASKS_FAILED = Counter(
    "imagegate_tasks_failed", "Tasks failed (refunded)", ["model", "speed", "provider", "error"]
)
TASK_SECONDS = Histogram(
    "imagegate_task_duration_seconds",
    "Time from a task's creation to its end (completed or failed)",
    ["model", "speed"],
    buckets=TASK_BUCKETS,
)
PROVIDER_CALLS = Counter(
    "imagegate_provider_calls", "Calls to providers, by outcome (ok or an error code)",
    ["provider", "outcome"],
)  # fmt: skip
PROVIDER_RETRIES = Counter(
    "imagegate_provider_retries", "Provider calls retried after a failure", ["provider"]
)
PROVIDER_IN_FLIGHT = Gauge(
    "imagegate_provider_in_flight", "Provider calls in progress", ["provider"],
    multiprocess_mode="livesum",
)  # fmt: skip
CALLBACK_ATTEMPTS = Counter(
    "imagegate_callback_attempts",
    "Callback delivery attempts: delivered, retry (failed, another attempt planned) or failed",
    ["outcome"],
)
CREDITS_CHARGED = Counter("imagegate_credits_charged", "Credits charged for tasks")
CREDITS_REFUNDED = Counter("imagegate_credits_refunded", "Credits refunded for failed tasks")

# Read from the database at each scrape (metrics/state.py): the same in every process.
QUEUE_DEPTH = "imagegate_queue_depth"
QUEUE_OLDEST = "imagegate_queue_oldest_job_age_seconds"
CIRCUIT_OPEN = "imagegate_provider_circuit_open"


def process_exited() -> None:
    """In multiprocess mode, this process's live gauges (calls in flight) stop counting."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]
