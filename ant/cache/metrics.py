"""A few Prometheus metrics and their text exposition format (version 0.0.4).

No client library: counters, callback gauges and histograms with labels are a few
dozen lines, and the cache's hot path only ever adds to a dict under a lock.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Sequence

LabelValues = tuple[str, ...]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: 0.5 ms .. 10 s, for requests served from memory and reviews that go to the
# API server.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Metric:
    def __init__(self, name: str, help_text: str, kind: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.label_names = tuple(labels)
        self.lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(Metric):
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, "counter", labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        with self.lock:
            self.values[labels] = self.values.get(labels, 0.0) + by

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def lines(self) -> list[str]:
        with self.lock:
            items = sorted(self.values.items())
        return [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(Metric):
    """Values read when scraped, from a callback: ``{label values: value}``."""

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str],
        collect: Callable[[], Iterable[tuple[LabelValues, float]]],
    ) -> None:
        super().__init__(name, help_text, "gauge", labels)
        self.collect = collect

    def lines(self) -> list[str]:
        return [
            f"{self.name}{_labels(self.label_names, k)} {_number(v)}"
            for k, v in sorted(self.collect())
        ]


class Histogram(Metric):
    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, "histogram", labels)
        self.buckets = tuple(buckets)
        # label values -> (per-bucket counts, +Inf count, sum)
        self.values: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        index = bisect.bisect_left(self.buckets, value)
        with self.lock:
            state = self.values.get(labels)
            if state is None:
                state = self.values[labels] = ([0] * (len(self.buckets) + 1), [0.0])
            state[0][index] += 1
            state[1][0] += value

    def count(self, *labels: str) -> int:
        state = self.values.get(labels)
        return sum(state[0]) if state else 0

    def lines(self) -> list[str]:
        out = []
        with self.lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self.values.items())
        for key, (counts, total) in items:
            cumulative = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += n
                le = f'le="{_number(bound)}"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {cumulative}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(total)}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {cumulative}")
        return out


class Registry:
    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        c = Counter(name, help_text, labels)
        self.add(c)
        return c

    def histogram(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Histogram:
        h = Histogram(name, help_text, labels)
        self.add(h)
        return h

    def gauge(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str],
        collect: Callable[[], Iterable[tuple[LabelValues, float]]],
    ) -> Gauge:
        g = Gauge(name, help_text, labels, collect)
        self.add(g)
        return g

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            lines += metric.header()
            lines += metric.lines()
        return "\n".join(lines) + "\n"
