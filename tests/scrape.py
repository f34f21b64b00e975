"""Reading a Prometheus text exposition in tests."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

Samples = Counter[tuple[str, frozenset[tuple[str, str]]]]


def parse(text: str) -> Samples:
    samples: Samples = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] += sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, got), value in samples.items() if n == name and wanted <= got)
