"""ant.kube.quantity against Kubernetes' own parser.

The properties that need Kubernetes run its Go code (quantity_go/main.go, built from
k8s.io/apimachinery in the Go module cache the dev cluster's build fills); without Go
they are skipped with the reason, the others still run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ant.errors import ValidationError
from ant.kube.quantity import MAX_EXPONENT, parse_quantity
from tests.conftest import ORIGINAL_ENV

GO_SOURCE = Path(__file__).parent / "quantity_go"
NANO = 10**9

# ---- strategies ------------------------------------------------------------------------
digits = st.text("0123456789", min_size=1, max_size=12)
numbers = st.one_of(
    digits,
    st.builds("{}.{}".format, digits, digits),
    st.builds("{}.".format, digits),
    st.builds(".{}".format, digits),
)
suffixes = st.one_of(
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G"]),
    st.sampled_from(["T", "P", "E"]),
    st.builds(
        "{}{}{}".format,
        st.sampled_from("eE"),
        st.sampled_from(["", "+", "-"]),
        st.integers(0, 30).map(str) | st.just("007"),
    ),
)
# Every string of the grammar quantity.go documents (exponents kept to a sane size).
documented = st.builds("{}{}{}".format, st.sampled_from(["", "+", "-"]), numbers, suffixes)
# Near misses: what a typo, a unit from elsewhere or a stray character makes.
near_misses = st.text("0123456789.+-eEinumkKMGTPi xB", min_size=0, max_size=7)


# ---- Kubernetes' parser ----------------------------------------------------------------
@pytest.fixture(scope="module")
def kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go program that answers with Kubernetes' own ParseQuantity."""
    go = shutil.which("go", path=ORIGINAL_ENV.get("PATH")) or "/usr/local/go/bin/go"
    if not Path(go).exists():
        pytest.skip("needs the Go toolchain (make devcluster installs what the build needs)")
    binary = tmp_path_factory.mktemp("quantity") / "quantity"
    env = {**ORIGINAL_ENV, "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOWORK": "off"}
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=GO_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build Kubernetes' quantity parser offline: {built.stderr[-300:]}")
    return binary


def kubernetes_says(binary: Path, texts: Sequence[str]) -> list[tuple[int, str] | None]:
    """Per text: (value in nanos, canonical form), or None when Kubernetes refuses it."""
    out = subprocess.run(
        [str(binary)],
        check=False,
        input="".join(f"{t}\n" for t in texts),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    answers: list[tuple[int, str] | None] = []
    # Go answers 1E4300 with all 4,300 digits: more than int() reads by default.
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        for line in out.stdout.splitlines():
            nanos, _, canonical = line.partition("\t")
            answers.append(None if line == "error" else (int(nanos), canonical))
    finally:
        sys.set_int_max_str_digits(limit)
    assert len(answers) == len(texts)
    return answers


def ours(text: str) -> Fraction | None:
    try:
        return parse_quantity(text)
    except ValidationError:
        return None


# Go's parser also takes strings without a digit before the suffix (".", "-", "Ki", "e3",
# all zero); they are outside the grammar it documents, and ant refuses them.
NO_DIGITS = re.compile(r"[+-]?\.?(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")
EXPONENT = re.compile(r".*[eE](?P<exponent>[+-]?[0-9]+)")


def refused_on_purpose(text: str) -> bool:
    """ant's documented departures from Go: no digits, or an exponent beyond +-MAX_EXPONENT."""
    exponent = EXPONENT.fullmatch(text)
    return bool(
        NO_DIGITS.fullmatch(text) or (exponent and abs(int(exponent["exponent"])) > MAX_EXPONENT)
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(documented, min_size=1, max_size=40))
def test_every_documented_quantity_has_kubernetes_value(kubernetes: Path, texts: list[str]) -> None:
    for text, answer in zip(texts, kubernetes_says(kubernetes, texts), strict=True):
        assert answer is not None, f"Kubernetes refuses {text!r}"
        assert ours(text) == Fraction(answer[0], NANO), text


@settings(max_examples=60, deadline=None)
@given(st.lists(near_misses, min_size=1, max_size=40))
@example(["-", ".", "+.", "Ki", "e3", "1e", "1K", "1ki", " 1", "1 ", "1..5", "1e1.5", "0x10"])
def test_ant_accepts_only_what_kubernetes_accepts_with_the_same_value(
    kubernetes: Path, texts: list[str]
) -> None:
    for text, answer in zip(texts, kubernetes_says(kubernetes, texts), strict=True):
        value = ours(text)
        if answer is None:
            assert value is None, f"ant accepts {text!r}, Kubernetes refuses it"
        elif value is None:
            assert refused_on_purpose(text), f"ant refuses {text!r}, Kubernetes takes it"
        else:
            assert value == Fraction(answer[0], NANO), text


@settings(max_examples=60, deadline=None)
@given(st.lists(documented, min_size=1, max_size=40))
@example(["1.5Gi", "0.5Mi", "1.5", "12e-10", "-0.5Ki", "9Ei", "00012", "1e3", "5e2", "0.1m"])
def test_kubernetes_canonical_forms_keep_the_value(kubernetes: Path, texts: list[str]) -> None:
    """What the API server gives back (the canonical form) means what was sent."""
    for text, answer in zip(texts, kubernetes_says(kubernetes, texts), strict=True):
        assert answer is not None
        nanos, canonical = answer
        if abs(nanos) >= 10**21 * NANO and canonical.lstrip("-").isdigit():
            continue  # upstream drops a decimal suffix beyond E (1000E prints as "1")
        assert ours(canonical) == Fraction(nanos, NANO), f"{text!r} -> {canonical!r}"


# ---- properties that need no Go --------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", Fraction(4)),
        ("500m", Fraction(1, 2)),
        ("64Gi", Fraction(64 * 2**30)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("1.5", Fraction(3, 2)),
        ("+2k", Fraction(2000)),
        ("-2k", Fraction(-2000)),
        ("100n", Fraction(1, 10**7)),
        ("0.1n", Fraction(1, NANO)),  # rounded up to a whole nano
        ("-0.1n", Fraction(-1, NANO)),  # away from zero
        ("1.", Fraction(1)),
        ("1.G", Fraction(10**9)),
        ("9Ei", Fraction(2**63 - 1)),  # a binary amount is capped at 2^63-1
        (f"1e-{MAX_EXPONENT}", Fraction(1, NANO)),
    ],
)
def test_values(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "four", "4x", "16GB", "1Ki5", "m", ".", "-", "1e", " 4", "4\n", f"1e{MAX_EXPONENT + 1}"],
)
def test_refusals_name_the_field_on_one_line(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_quantity(text, "resource cpu")
    assert str(err.value).startswith(f"resource cpu: {text!r} is not a quantity")
    assert "\n" not in str(err.value).replace(repr(text), "")


@given(documented.filter(lambda t: t[0] not in "+-"))
def test_a_sign_negates(text: str) -> None:
    assert parse_quantity(f"-{text}") == -parse_quantity(text) == -parse_quantity(f"+{text}")


@given(documented)
def test_values_are_whole_nanos(text: str) -> None:
    assert (parse_quantity(text) * NANO).denominator == 1


@given(st.integers(0, 10**12), st.sampled_from([("k", 3), ("M", 6), ("G", 9), ("T", 12)]))
def test_a_decimal_suffix_is_a_power_of_ten(n: int, suffix: tuple[str, int]) -> None:
    letter, power = suffix
    assert parse_quantity(f"{n}{letter}") == parse_quantity(f"{n}e{power}") == n * 10**power


@given(st.integers(0, 2**20), st.sampled_from([("Ki", 10), ("Mi", 20), ("Gi", 30)]))
def test_a_binary_suffix_is_a_power_of_1024(n: int, suffix: tuple[str, int]) -> None:
    letter, power = suffix
    assert parse_quantity(f"{n}{letter}") == n * 2**power
