"""ant.cache.metrics: the Prometheus text exposition format."""

from __future__ import annotations

import math
import re

from ant.cache.metrics import Registry

SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """A strict reader of the text format: every line a comment, a TYPE/HELP or a sample."""
    families: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    typed: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample: {line!r}"
        labels = tuple(LABEL.findall(m["labels"] or ""))
        value = float(m["value"])
        base = re.sub(r"_(bucket|sum|count)$", "", m["name"])
        assert base in typed or m["name"] in typed, f"sample before its TYPE: {line!r}"
        families.setdefault(m["name"], {})[labels] = value
    return families


def test_counters_gauges_histograms_render_as_prometheus_text() -> None:
    registry = Registry()
    requests = registry.counter("x_requests_total", "Requests.", ("endpoint", "code"))
    latency = registry.histogram("x_seconds", "Latency.", ("endpoint",))
    registry.gauge("x_objects", "Objects.", ("kind",), lambda: [(("pods",), 3.0)])
    requests.inc("list pods", "200")
    requests.inc("list pods", "200")
    requests.inc('we"ird\\', "500")
    for v in (0.0004, 0.003, 0.003, 20.0):
        latency.observe(v, "list")
    families = parse(registry.render())
    assert families["x_requests_total"][(("endpoint", "list pods"), ("code", "200"))] == 2
    assert families["x_objects"][(("kind", "pods"),)] == 3
    buckets = families["x_seconds_bucket"]
    assert buckets[(("endpoint", "list"), ("le", "0.0005"))] == 1
    assert buckets[(("endpoint", "list"), ("le", "0.005"))] == 3
    assert buckets[(("endpoint", "list"), ("le", "+Inf"))] == 4
    assert families["x_seconds_count"][(("endpoint", "list"),)] == 4
    assert math.isclose(families["x_seconds_sum"][(("endpoint", "list"),)], 20.0064)
    assert latency.count("list") == 4
