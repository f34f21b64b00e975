"""Prometheus metrics: what happened (counters and histograms kept by the process that saw it)
and what is (queue depths, circuits: read from the database when scraped)."""
