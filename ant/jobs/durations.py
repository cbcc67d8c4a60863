"""Durations as people type them: ``90s``, ``15m``, ``24h``, ``7d``, ``1h30m`` (--ttl,
--timeout, --deadline, ...). Its own module: the global ``--deadline`` is parsed on every
command's path, which needs nothing else of a job spec."""

from __future__ import annotations

import re

from ant.errors import ValidationError

_DURATION = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Ten years: longer would overflow timers (and the API server's int64 seconds) long
# before it meant anything.
MAX_DURATION = 3650 * 86400


def parse_duration(text: str, flag: str) -> int:
    """``90s``, ``15m``, ``24h``, ``7d``, ``1h30m`` -> seconds, at most ``MAX_DURATION``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValidationError(flag, f"{text!r} is not a duration", hint="e.g. 30s, 15m, 24h, 7d")
    seconds = sum(int(n) * _SECONDS[u] for n, u in parts)
    if seconds > MAX_DURATION:
        raise ValidationError(flag, f"{text!r} is longer than 3650d", hint="e.g. 30s, 15m, 24h, 7d")
    return seconds


def format_duration(seconds: int) -> str:
    """The inverse of ``parse_duration`` in the largest whole units: 604800 -> ``7d``."""
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"
