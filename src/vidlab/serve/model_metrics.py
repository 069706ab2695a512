"""One Prometheus exposition for several models: each service's metrics, labelled by model.

Every `PredictionService` owns its registry (so a reloaded version starts its counters at zero
and a retired one takes its own with it); `/metrics` shows them all as one set of families,
each sample labelled `model` (the served name) and `version` (`NAME@HASH`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample


class _Merged:
    """A collector yielding the merged families (registered on a throwaway registry)."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merged_families(services: Iterable[tuple[str, Any]]) -> list[Metric]:
    """The metric families of `(model name, service)` pairs, samples labelled by model."""
    families: dict[str, Metric] = {}
    for name, service in services:
        extra = {"model": name, "version": service.predictor.version}
        for family in service.metrics.registry.collect():
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation,
                                                        family.type, family.unit)
            merged.samples.extend(Sample(s.name, {**s.labels, **extra}, s.value, s.timestamp,
                                         s.exemplar) for s in family.samples)
    return list(families.values())


def exposition(services: Iterable[tuple[str, Any]],
               extra: CollectorRegistry | None = None) -> bytes:
    """Prometheus text of every service (and of `extra`, the server's own metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(merged_families(services)))
    text = generate_latest(registry)
    return text + generate_latest(extra) if extra is not None else text
