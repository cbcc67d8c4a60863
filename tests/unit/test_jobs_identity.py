"""The created-by label rule (docs/metadata.md): any username -> a valid, distinct label value."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant.jobs.identity import Identity, IdentityCache, user_label
from ant.kube.config import Cluster, KubeConfig, User, credential_key

# Kubernetes' label value rule, written out independently of ant's own regex.
K8S_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and K8S_LABEL_VALUE.fullmatch(value) is not None


def digest(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:10]


@pytest.mark.parametrize(
    "username", ["alice", "bob", "Alice.Smith", "a", "carol-2", "x" * 63, "1234"]
)
def test_valid_usernames_are_used_unchanged(username: str) -> None:
    assert user_label(username) == username


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice@example.com", "alice-example.com_" + digest("alice@example.com")),
        (
            "system:serviceaccount:ns:sa",
            "system-serviceaccount-ns-sa_" + digest("system:serviceaccount:ns:sa"),
        ),
        ("alice_smith", "alice-smith_" + digest("alice_smith")),
        ("-alice-", "alice_" + digest("-alice-")),
        ("", "user_" + digest("")),
        ("@@@", "user_" + digest("@@@")),
        ("José", "Jos_" + digest("José")),
        ("alice\n", "alice_" + digest("alice\n")),
    ],
)
def test_other_usernames_get_a_readable_prefix_and_a_hash(username: str, expected: str) -> None:
    assert user_label(username) == expected
    assert is_label_value(expected)


def test_long_usernames_fit_in_63_characters() -> None:
    long_name = "very-long-user-name." * 10  # 200 characters
    label = user_label(long_name)
    assert len(label) <= 63
    assert is_label_value(label)
    assert label.endswith("_" + digest(long_name))
    assert label.startswith("very-long-user-name.very-long")
    # The 64-character form of a valid name is mapped too, and stays distinct.
    assert user_label("x" * 64) != user_label("x" * 65)
    assert is_label_value(user_label("x" * 64))


def test_confusable_usernames_stay_distinct() -> None:
    """Names that map to the same readable prefix differ in their hash; a mapped value
    (always with '_') never equals an unmapped one (never with '_')."""
    names = [
        "alice",
        "alice_",
        "alice@",
        "alice@x",
        "alice_x",
        "alice-x",
        "alice.x",
        "alice:x",
        "Alice",
        "alice-example.com",
        "alice@example.com",
        "alice_example.com",
        user_label("alice@example.com"),  # a username that looks like a mapped label
    ]
    labels = [user_label(n) for n in names]
    assert len(set(labels)) == len(names)


def test_the_rule_is_stable() -> None:
    """Labels are stored on jobs: the same user must map to the same value forever."""
    assert user_label("alice@example.com") == "alice-example.com_ff8d9819fc"
    assert user_label("system:serviceaccount:ml:trainer") == user_label(
        "system:serviceaccount:ml:trainer"
    )
    assert Identity("alice@example.com").label == user_label("alice@example.com")


usernames = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="abcXYZ019-_.:@/ \n", max_size=80),
    st.from_regex(r"[a-z][a-z0-9.-]{0,70}", fullmatch=True),
)


@settings(max_examples=500, deadline=None)
@given(usernames)
def test_result_is_always_a_valid_label_value(username: str) -> None:
    label = user_label(username)
    assert is_label_value(label), (username, label)
    assert label  # never empty: an empty value would select unlabelled objects


@settings(max_examples=200, deadline=None)
@given(st.sets(usernames, min_size=2, max_size=40))
def test_mapping_is_injective_on_samples(names: set[str]) -> None:
    assert len({user_label(n) for n in names}) == len(names)


# ---- the remembered identity -----------------------------------------------------------
ALICE = Identity("alice@example.com", "u-1", ("researchers", "system:authenticated"))


def test_an_identity_is_remembered_for_its_ttl_only(tmp_path: Path) -> None:
    cache = IdentityCache(tmp_path / "identity" / "key.json", ttl=300)
    assert cache.load() is None
    cache.store(ALICE, now=1000.0)
    assert cache.load(now=1000.0) == ALICE
    assert cache.load(now=1299.0) == ALICE
    assert cache.load(now=1300.0) is None  # stale
    assert cache.load(now=999.0) is None  # from the future: a clock went back
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    cache.forget()
    assert cache.load(now=1000.0) is None
    cache.forget()  # forgetting twice is fine


@pytest.mark.parametrize(
    "content", ["", "{", "[]", '{"at": "x", "username": "a"}', '{"at": 1, "username": 3}']
)
def test_a_damaged_file_is_not_used(tmp_path: Path, content: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    assert IdentityCache(path).load(now=1.0) is None


def test_storing_where_nothing_can_be_written_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    IdentityCache(blocker / "sub" / "key.json").store(ALICE)  # parent is a file


def kubeconfig(server: str = "https://k:6443", **user: Any) -> KubeConfig:
    return KubeConfig(context="c", cluster=Cluster(server=server), user=User(**user))


def test_the_key_names_server_and_credential_and_holds_neither() -> None:
    key = credential_key(kubeconfig(token="s3cret-token"))
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key == credential_key(kubeconfig(token="s3cret-token"))
    assert key != credential_key(kubeconfig(token="other-token"))
    assert key != credential_key(kubeconfig("https://other:6443", token="s3cret-token"))
    assert key != credential_key(kubeconfig(token_file="/var/run/token"))
    assert credential_key(kubeconfig(client_cert_data=b"a")) != credential_key(
        kubeconfig(client_cert_data=b"b")
    )
