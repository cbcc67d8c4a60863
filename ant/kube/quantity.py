"""Kubernetes resource quantities (``4``, ``500m``, ``16Gi``, ``1e3``): the one parser.

The grammar is the one k8s.io/apimachinery/pkg/api/resource/quantity.go documents::

    <quantity>     ::= <sign>? <number> <suffix>?
    <number>       ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>       ::= Ki | Mi | Gi | Ti | Pi | Ei            (powers of 1024)
                     | n | u | m | k | M | G | T | P | E      (powers of 1000)
                     | e<sign>?<digits> | E<sign>?<digits>   (powers of ten)

The value is Kubernetes' own: exact (never a float), rounded up, away from zero, to a
whole multiple of 1n (``0.1n`` is ``1n``), and a binary-suffixed amount beyond 2^63-1 is
capped there. Go's parser also takes a few strings outside its documented grammar
(``.``, ``-``, ``Ki`` and ``e3`` all parse as zero): ant refuses those, and exponents
beyond +-1000 (no resource is that large or small); everything ant accepts, the API
server accepts with the same value (tests/unit/test_quantity.py checks it against the
Go code itself). Whether a negative amount makes sense is the caller's rule.
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import ceil

from ant.errors import ValidationError

EXAMPLES = "e.g. 4, 500m, 1.5, 16Gi, 100M, 1e3"
MAX_EXPONENT = 1000

_GRAMMAR = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?"
)
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_NANO = 10**9
_BINARY_CAP = 2**63 - 1


def parse_quantity(text: str, what: str = "quantity") -> Fraction:
    """The exact value Kubernetes gives ``text``; ``ValidationError`` naming ``what`` if
    it is not a quantity."""
    found = _GRAMMAR.fullmatch(text)
    exponent = found and found["exponent"]
    if not found or (exponent and abs(int(exponent)) > MAX_EXPONENT):
        raise ValidationError(what, f"{text!r} is not a quantity", hint=EXAMPLES)
    magnitude = Fraction(found["number"])
    if found["binary"]:
        magnitude *= 2 ** _BINARY[found["binary"]]
    elif found["decimal"]:
        magnitude *= Fraction(10) ** _DECIMAL[found["decimal"]]
    elif exponent:
        magnitude *= Fraction(10) ** int(exponent)
    magnitude = Fraction(ceil(magnitude * _NANO), _NANO)
    if found["binary"]:
        magnitude = min(magnitude, Fraction(_BINARY_CAP))
    return -magnitude if found["sign"] == "-" else magnitude
