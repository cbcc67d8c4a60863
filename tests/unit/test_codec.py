"""ant.kube.codec and the generated ant.kube.proto package; no cluster needed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import json_format

from ant import errors
from ant.kube import codec
from ant.kube.proto import (
    MODULES,
    SOURCE_VERSIONS,
    apps_v1_pb2,
    core_v1_pb2,
    events_v1_pb2,
    meta_v1_pb2,
    runtime_pb2,
)

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "ant" / "kube" / "proto"

# The kinds ant talks to the API server in, as (apiVersion, kind).
REQUIRED_KINDS = {
    *(
        (v, k + suffix)
        for v, k in [
            ("apps/v1", "StatefulSet"),
            ("v1", "Pod"),
            ("v1", "Service"),
            ("v1", "Event"),
            ("events.k8s.io/v1", "Event"),
            ("v1", "Node"),
            ("v1", "Namespace"),
            ("v1", "ConfigMap"),
            ("apps/v1", "ControllerRevision"),
            ("scheduling.k8s.io/v1", "PriorityClass"),
            ("meta.k8s.io/v1", "PartialObjectMetadata"),
            ("policy/v1", "PodDisruptionBudget"),
        ]
        for suffix in ("", "List")
    ),
    ("authentication.k8s.io/v1", "TokenReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"),
    ("authorization.k8s.io/v1", "SubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("v1", "Status"),
    ("meta.k8s.io/v1", "WatchEvent"),
    ("autoscaling/v1", "Scale"),
    ("coordination.k8s.io/v1", "Lease"),
}

# apiVersion -> proto package of its kinds (Status and WatchEvent live in meta.v1).
PROTO_PACKAGES = {
    "v1": "k8s.io.api.core.v1",
    "apps/v1": "k8s.io.api.apps.v1",
    "events.k8s.io/v1": "k8s.io.api.events.v1",
    "scheduling.k8s.io/v1": "k8s.io.api.scheduling.v1",
    "scheduling.k8s.io/v1beta1": "k8s.io.api.scheduling.v1beta1",
    "policy/v1": "k8s.io.api.policy.v1",
    "coordination.k8s.io/v1": "k8s.io.api.coordination.v1",
    "autoscaling/v1": "k8s.io.api.autoscaling.v1",
    "authentication.k8s.io/v1": "k8s.io.api.authentication.v1",
    "authorization.k8s.io/v1": "k8s.io.api.authorization.v1",
    "meta.k8s.io/v1": "k8s.io.apimachinery.pkg.apis.meta.v1",
}
META_KINDS = {"Status", "WatchEvent"}


def make_statefulset(name: str = "train-1", replicas: int = 4) -> apps_v1_pb2.StatefulSet:
    from ant.kube.proto import intstr_pb2, resource_pb2

    labels = {f"ant.dev/label-{i}": f"value-{i}" for i in range(10)}
    annotations = {f"ant.dev/annotation-{i}": f"some longer value {i} " * 3 for i in range(15)}
    return apps_v1_pb2.StatefulSet(
        metadata=meta_v1_pb2.ObjectMeta(
            name=name,
            namespace="ml",
            uid=f"uid-{name}",
            resourceVersion="12345",
            generation=3,
            labels=labels,
            annotations=annotations,
        ),
        spec=apps_v1_pb2.StatefulSetSpec(
            replicas=replicas,
            serviceName=name,
            podManagementPolicy="Parallel",
            selector=meta_v1_pb2.LabelSelector(matchLabels={"ant.dev/job": name}),
            updateStrategy=apps_v1_pb2.StatefulSetUpdateStrategy(
                type="RollingUpdate",
                rollingUpdate=apps_v1_pb2.RollingUpdateStatefulSetStrategy(
                    maxUnavailable=intstr_pb2.IntOrString(type=1, strVal="25%"),
                ),
            ),
            template=core_v1_pb2.PodTemplateSpec(
                metadata=meta_v1_pb2.ObjectMeta(labels=labels, annotations=annotations),
                spec=core_v1_pb2.PodSpec(
                    restartPolicy="Always",
                    priorityClassName="ml-batch",
                    terminationGracePeriodSeconds=30,
                    nodeSelector={"pool": "gpu"},
                    tolerations=[
                        core_v1_pb2.Toleration(key="gpu", operator="Exists", effect="NoSchedule")
                    ],
                    containers=[
                        core_v1_pb2.Container(
                            name="trainer",
                            image="registry.example/ml/trainer:1.2.3",
                            command=["python", "-m", "train"],
                            args=["--epochs", "10", "--lr", "0.001"],
                            env=[
                                core_v1_pb2.EnvVar(name=f"ENV_{i}", value=str(i)) for i in range(8)
                            ],
                            ports=[core_v1_pb2.ContainerPort(name="dist", containerPort=29500)],
                            resources=core_v1_pb2.ResourceRequirements(
                                requests={
                                    "cpu": resource_pb2.Quantity(string="4"),
                                    "memory": resource_pb2.Quantity(string="16Gi"),
                                },
                                limits={"nvidia.com/gpu": resource_pb2.Quantity(string="1")},
                            ),
                            volumeMounts=[
                                core_v1_pb2.VolumeMount(name="data", mountPath="/data"),
                                core_v1_pb2.VolumeMount(name="shm", mountPath="/dev/shm"),
                            ],
                            readinessProbe=core_v1_pb2.Probe(
                                handler=core_v1_pb2.ProbeHandler(
                                    httpGet=core_v1_pb2.HTTPGetAction(
                                        path="/healthz",
                                        port=intstr_pb2.IntOrString(type=0, intVal=8080),
                                    )
                                ),
                                periodSeconds=10,
                            ),
                        )
                    ],
                    volumes=[
                        core_v1_pb2.Volume(
                            name="shm",
                            volumeSource=core_v1_pb2.VolumeSource(
                                emptyDir=core_v1_pb2.EmptyDirVolumeSource(medium="Memory")
                            ),
                        )
                    ],
                ),
            ),
        ),
        status=apps_v1_pb2.StatefulSetStatus(replicas=replicas, readyReplicas=replicas - 1),
    )


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def watch_event(event_type: str, obj_body: bytes) -> bytes:
    event = meta_v1_pb2.WatchEvent(type=event_type, object=runtime_pb2.RawExtension(raw=obj_body))
    return event.SerializeToString()


def status_msg(
    code: int,
    reason: str,
    message: str = "",
    *,
    name: str = "",
    kind: str = "",
    retry_after: int = 0,
    causes: tuple[tuple[str, str, str], ...] = (),
) -> meta_v1_pb2.Status:
    return meta_v1_pb2.Status(
        status="Failure",
        code=code,
        reason=reason,
        message=message,
        details=meta_v1_pb2.StatusDetails(
            name=name,
            kind=kind,
            retryAfterSeconds=retry_after,
            causes=[meta_v1_pb2.StatusCause(field=f, reason=r, message=m) for f, r, m in causes],
        ),
    )


# --- envelope and round trips ----------------------------------------------------------


def test_constants() -> None:
    assert codec.PROTOBUF == "application/vnd.kubernetes.protobuf"
    assert codec.PROTOBUF_WATCH == "application/vnd.kubernetes.protobuf;stream=watch"
    assert codec.JSON == "application/json"
    assert codec.MAGIC == b"k8s\x00"


def test_encode_envelope_bytes_match_the_wire_format() -> None:
    # Unknown{typeMeta=1{apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4},
    # written the way Go writes it (empty strings included).
    type_meta = b"\x0a\x07apps/v1" + b"\x12\x0bStatefulSet"
    expected = (
        b"k8s\x00"
        + b"\x0a"
        + bytes([len(type_meta)])
        + type_meta
        + b"\x12\x03xyz"
        + b"\x1a\x00"
        + b"\x22\x00"
    )
    assert codec.encode_envelope("apps/v1", "StatefulSet", b"xyz") == expected
    env = codec.decode_envelope(expected)
    assert env == codec.Envelope("apps/v1", "StatefulSet", b"xyz")


def test_statefulset_round_trip() -> None:
    sts = make_statefulset()
    body = codec.encode(sts, "apps/v1", "StatefulSet")
    assert body.startswith(codec.MAGIC)
    env = codec.decode_envelope(body)
    assert (env.api_version, env.kind) == ("apps/v1", "StatefulSet")
    assert env.raw == sts.SerializeToString()

    out = codec.decode(body)
    assert isinstance(out, apps_v1_pb2.StatefulSet)
    assert out == sts
    assert out.metadata.name == "train-1"
    assert dict(out.metadata.labels) == {f"ant.dev/label-{i}": f"value-{i}" for i in range(10)}
    assert len(out.metadata.annotations) == 15
    assert out.metadata.annotations["ant.dev/annotation-7"].startswith("some longer value 7")
    container = out.spec.template.spec.containers[0]
    assert container.image == "registry.example/ml/trainer:1.2.3"
    assert container.resources.limits["nvidia.com/gpu"].string == "1"
    assert container.readinessProbe.handler.httpGet.port.intVal == 8080
    assert out.spec.updateStrategy.rollingUpdate.maxUnavailable.strVal == "25%"
    assert out.spec.template.metadata.labels == sts.spec.template.metadata.labels
    assert out.spec.replicas == 4
    assert out.status.readyReplicas == 3


def test_list_round_trip_and_continue() -> None:
    items = [make_statefulset(f"train-{i}") for i in range(3)]
    lst = apps_v1_pb2.StatefulSetList(
        metadata=meta_v1_pb2.ListMeta(resourceVersion="999", remainingItemCount=7),
        items=items,
    )
    setattr(lst.metadata, "continue", "token-abc")
    out = codec.decode(codec.encode(lst, "apps/v1", "StatefulSetList"))
    assert isinstance(out, apps_v1_pb2.StatefulSetList)
    assert [i.metadata.name for i in out.items] == ["train-0", "train-1", "train-2"]
    assert out.metadata.resourceVersion == "999"
    assert out.metadata.remainingItemCount == 7
    assert getattr(out.metadata, "continue") == "token-abc"
    assert out.metadata.HasField("continue")


def test_list_meta_continue_is_field_3_on_the_wire() -> None:
    meta = meta_v1_pb2.ListMeta.FromString(b"\x12\x0242\x1a\x05abcde")
    assert meta.resourceVersion == "42"
    assert getattr(meta, "continue") == "abcde"


def test_descriptors_keep_upstream_names() -> None:
    assert apps_v1_pb2.DESCRIPTOR.name == "k8s.io/api/apps/v1/generated.proto"
    assert apps_v1_pb2.StatefulSet.DESCRIPTOR.full_name == "k8s.io.api.apps.v1.StatefulSet"
    assert meta_v1_pb2.Status.DESCRIPTOR.full_name == codec.STATUS_FULL_NAME
    assert apps_v1_pb2.StatefulSet.__module__ == "ant.kube.proto.apps_v1_pb2"


# --- envelope errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"kind":"Status","apiVersion":"v1"}', "no b'k8s\\\\x00' prefix"),
        (b"", "empty body"),
        (b"k8s", "no b'k8s"),
        (b"k8s\x01" + b"\x0a\x00", "no b'k8s"),
        (b"k8s\x00\xff\xff\xff\xff", "does not parse"),
        (b"k8s\x00\x0a\x05\x0a", "does not parse"),  # typeMeta claims 5 bytes, has 1
        (b"k8s\x00", "names no kind"),
        (b"k8s\x00\x12\x03abc", "names no kind"),
    ],
)
def test_decode_envelope_errors(body: bytes, match: str) -> None:
    with pytest.raises(errors.DecodeError, match=match):
        codec.decode_envelope(body)
    with pytest.raises(errors.DecodeError):
        codec.decode(body)


def test_decode_envelope_rejects_content_encoding() -> None:
    unknown = runtime_pb2.Unknown(
        typeMeta=runtime_pb2.TypeMeta(apiVersion="v1", kind="Pod"), contentEncoding="gzip"
    )
    with pytest.raises(errors.DecodeError, match="contentEncoding 'gzip'"):
        codec.decode_envelope(codec.MAGIC + unknown.SerializeToString())


def test_decode_errors_on_unknown_kind_and_bad_raw() -> None:
    with pytest.raises(errors.DecodeError, match="no protobuf type registered"):
        codec.decode(codec.encode_envelope("example.com/v1", "Widget", b""))
    with pytest.raises(errors.DecodeError, match="apps/v1 StatefulSet: invalid protobuf"):
        codec.decode(codec.encode_envelope("apps/v1", "StatefulSet", b"\xff\xff\xff"))


def test_same_message_name_in_another_group_decodes_as_its_own_kind() -> None:
    event_body = codec.encode(events_v1_pb2.Event(note="x"), "events.k8s.io/v1", "Event")
    out = codec.decode(event_body)
    assert isinstance(out, events_v1_pb2.Event)
    assert out.note == "x"


# --- registry -----------------------------------------------------------------------------


def test_registry_covers_required_kinds() -> None:
    assert set(codec.KINDS) >= REQUIRED_KINDS


@pytest.mark.parametrize(("api_version", "kind"), sorted(codec.KINDS))
def test_message_class_for_every_registered_kind(api_version: str, kind: str) -> None:
    cls = codec.message_class(api_version, kind)
    assert cls.DESCRIPTOR.name == kind
    package = (
        PROTO_PACKAGES["meta.k8s.io/v1"] if kind in META_KINDS else PROTO_PACKAGES[api_version]
    )
    assert cls.DESCRIPTOR.full_name == f"{package}.{kind}"
    assert codec.message_class(api_version, kind) is cls
    # Every registered kind goes through the envelope and back.
    body = codec.encode(cls(), api_version, kind)
    assert type(codec.decode(body)) is cls


def test_message_class_unknown() -> None:
    with pytest.raises(errors.DecodeError, match="'apps/v2' 'StatefulSet'"):
        codec.message_class("apps/v2", "StatefulSet")
    with pytest.raises(errors.DecodeError):
        codec.message_class("v1", "Table")


def test_core_and_events_event_are_different_classes() -> None:
    assert codec.message_class("v1", "Event") is core_v1_pb2.Event
    assert codec.message_class("events.k8s.io/v1", "Event") is events_v1_pb2.Event
    assert codec.message_class("v1", "Status") is meta_v1_pb2.Status


# --- Status ----------------------------------------------------------------------------


STATUS_CASES = [
    (
        status_msg(
            404, "NotFound", 'statefulsets.apps "x" not found', name="x", kind="statefulsets"
        ),
        errors.NotFound,
        errors.ExitCode.NOT_FOUND,
    ),
    (
        status_msg(409, "AlreadyExists", "already exists", name="x", kind="statefulsets"),
        errors.AlreadyExists,
        errors.ExitCode.CONFLICT,
    ),
    (
        status_msg(409, "Conflict", "the object has been modified", name="x"),
        errors.Conflict,
        errors.ExitCode.CONFLICT,
    ),
    (
        status_msg(
            422,
            "Invalid",
            'StatefulSet.apps "x" is invalid: spec.replicas: Invalid value: -1',
            name="x",
            kind="StatefulSet",
            causes=(
                ("spec.replicas", "FieldValueInvalid", "Invalid value: -1"),
                ("metadata.name", "FieldValueInvalid", "a lowercase RFC 1123 subdomain"),
            ),
        ),
        errors.Invalid,
        errors.ExitCode.USAGE,
    ),
    (
        status_msg(429, "TooManyRequests", "too many requests", retry_after=3),
        errors.TooManyRequests,
        errors.ExitCode.UNAVAILABLE,
    ),
]


@pytest.mark.parametrize(("msg", "exc_type", "exit_code"), STATUS_CASES)
def test_status_to_api_error(
    msg: meta_v1_pb2.Status, exc_type: type[errors.ApiError], exit_code: errors.ExitCode
) -> None:
    decoded = codec.decode(codec.encode(msg, "v1", "Status"))
    status = codec.status_from_message(decoded)
    assert status.code == msg.code
    assert status.reason == msg.reason
    assert status.message == msg.message
    assert status.name == msg.details.name
    assert status.kind == msg.details.kind
    assert status.retry_after_seconds == msg.details.retryAfterSeconds
    assert status.causes == tuple(
        errors.StatusCause(c.field, c.reason, c.message) for c in msg.details.causes
    )
    err = errors.api_error(status)
    assert type(err) is exc_type
    assert err.exit_code == exit_code
    assert err.status is status

    # The JSON form of the same Status maps to the same thing.
    as_json = json_format.MessageToDict(msg)
    assert codec.status_from_json({"kind": "Status", "apiVersion": "v1", **as_json}) == status


def test_status_details_specifics() -> None:
    invalid = codec.status_from_message(STATUS_CASES[3][0])
    assert invalid.causes[0] == errors.StatusCause(
        field="spec.replicas", reason="FieldValueInvalid", message="Invalid value: -1"
    )
    assert len(invalid.causes) == 2
    too_many = errors.api_error(codec.status_from_message(STATUS_CASES[4][0]))
    assert too_many.retry_after == 3.0
    not_found = codec.status_from_message(STATUS_CASES[0][0])
    assert (not_found.name, not_found.kind) == ("x", "statefulsets")
    assert isinstance(errors.api_error(not_found), errors.NotFoundError)


def test_status_from_json_server_body() -> None:
    body = json.loads(
        """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message":"Too large resource version","reason":"Timeout",
        "details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large"}],
        "retryAfterSeconds":1},"code":504}"""
    )
    status = codec.status_from_json(body)
    assert status == errors.Status(
        code=504,
        reason="Timeout",
        message="Too large resource version",
        retry_after_seconds=1,
        causes=(
            errors.StatusCause(field="", reason="ResourceVersionTooLarge", message="Too large"),
        ),
    )
    assert type(errors.api_error(status)) is errors.ServerTimeout


def test_status_from_json_tolerates_missing_and_odd_fields() -> None:
    assert codec.status_from_json({}) == errors.Status(code=0)
    odd = {"code": "404", "reason": None, "details": {"causes": ["x", {"field": 3}]}}
    assert codec.status_from_json(odd) == errors.Status(
        code=0, causes=(errors.StatusCause("", "", ""),)
    )
    assert codec.status_from_json({"code": True, "details": None}).code == 0


def test_status_from_message_rejects_other_messages() -> None:
    with pytest.raises(
        errors.DecodeError, match=re.escape("expected a Status, got k8s.io.api.apps.v1")
    ):
        codec.status_from_message(make_statefulset())


# --- watch -----------------------------------------------------------------------------


def watch_stream() -> tuple[bytes, list[bytes]]:
    small = make_statefulset("w")
    small.spec.ClearField("template")
    payloads = [
        watch_event("ADDED", codec.encode(small, "apps/v1", "StatefulSet")),
        watch_event("MODIFIED", codec.encode(make_statefulset("w"), "apps/v1", "StatefulSet")),
        watch_event(
            "BOOKMARK",
            codec.encode(
                apps_v1_pb2.StatefulSet(
                    metadata=meta_v1_pb2.ObjectMeta(
                        resourceVersion="77",
                        annotations={"k8s.io/initial-events-end": "true"},
                    )
                ),
                "apps/v1",
                "StatefulSet",
            ),
        ),
        b"",  # an empty frame is still a frame
        watch_event("ERROR", codec.encode(status_msg(410, "Expired", "too old"), "v1", "Status")),
    ]
    return b"".join(frame(p) for p in payloads), payloads


def test_watch_frames_are_big_endian() -> None:
    stream, payloads = watch_stream()
    assert len(payloads[1]) > 255  # the length uses more than one byte
    assert len(payloads[1]) < 65536
    assert list(codec.iter_watch_frames([stream])) == payloads
    big = b"x" * 70_000
    framed = frame(big)
    assert framed[:4] == b"\x00\x01\x11\x70"
    assert list(codec.iter_watch_frames([framed[:3], framed[3:100], framed[100:]])) == [big]
    # The same length little-endian is a 1.9 GB frame: rejected, not buffered.
    with pytest.raises(errors.DecodeError, match="exceeds"):
        list(codec.iter_watch_frames([len(big).to_bytes(4, "little") + big]))


def test_watch_frames_split_at_every_offset() -> None:
    stream, payloads = watch_stream()
    for cut in range(len(stream) + 1):
        assert list(codec.iter_watch_frames([stream[:cut], stream[cut:]])) == payloads, cut
    for size in (1, 2, 3, 5, 7):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert list(codec.iter_watch_frames(iter(chunks))) == payloads, size


def test_watch_frames_are_yielded_as_they_complete() -> None:
    stream, payloads = watch_stream()
    first_end = 4 + len(payloads[0])
    chunks = iter([stream[:first_end], stream[first_end:]])
    frames = codec.iter_watch_frames(chunks)
    assert next(frames) == payloads[0]
    # Only the first chunk has been consumed.
    assert next(chunks) == stream[first_end:]


def test_watch_stream_truncated() -> None:
    stream, payloads = watch_stream()
    assert list(codec.iter_watch_frames([])) == []
    assert list(codec.iter_watch_frames([b"", b""])) == []

    got: list[bytes] = []
    with pytest.raises(errors.DecodeError, match="ended inside a frame"):
        got.extend(codec.iter_watch_frames([stream[:-1]]))
    assert got == payloads[:-1]  # every complete frame came out first

    got = []
    with pytest.raises(errors.DecodeError, match=r"inside a frame's length \(2 of 4"):
        got.extend(codec.iter_watch_frames([stream, b"\x00\x00"]))
    assert got == payloads


def test_watch_frame_limit() -> None:
    too_long = (codec.MAX_WATCH_FRAME + 1).to_bytes(4, "big")
    with pytest.raises(errors.DecodeError, match=f"exceeds the {codec.MAX_WATCH_FRAME}-byte"):
        list(codec.iter_watch_frames([too_long]))  # refused on the length alone
    at_limit = codec.MAX_WATCH_FRAME.to_bytes(4, "big")
    assert list(codec.iter_watch_frames([at_limit, b"x" * codec.MAX_WATCH_FRAME])) == [
        b"x" * codec.MAX_WATCH_FRAME
    ]


def test_decode_watch_events() -> None:
    _, payloads = watch_stream()
    event_type, env = codec.decode_watch_event(payloads[1])
    assert event_type == "MODIFIED"
    assert (env.api_version, env.kind) == ("apps/v1", "StatefulSet")
    sts = codec.decode_envelope_object(env)
    assert isinstance(sts, apps_v1_pb2.StatefulSet)
    assert sts == make_statefulset("w")

    event_type, env = codec.decode_watch_event(payloads[2])
    assert event_type == "BOOKMARK"
    bookmark = codec.decode_envelope_object(env)
    assert isinstance(bookmark, apps_v1_pb2.StatefulSet)
    assert bookmark.metadata.resourceVersion == "77"

    event_type, env = codec.decode_watch_event(payloads[4])
    assert (event_type, env.kind) == ("ERROR", "Status")
    err = errors.api_error(codec.status_from_message(codec.decode_envelope_object(env)))
    assert type(err) is errors.Gone
    assert err.status.message == "too old"


def test_decode_watch_event_errors() -> None:
    with pytest.raises(errors.DecodeError, match="no type"):
        codec.decode_watch_event(b"")
    with pytest.raises(errors.DecodeError, match="does not parse"):
        codec.decode_watch_event(b"\x0a\x09ADD")
    # The object must carry its own envelope.
    raw_object = make_statefulset().SerializeToString()
    with pytest.raises(errors.DecodeError, match="watch ADDED event: not a Kubernetes protobuf"):
        codec.decode_watch_event(watch_event("ADDED", raw_object))


# --- backend ---------------------------------------------------------------------------


def test_check_upb_is_quiet_under_upb(monkeypatch: pytest.MonkeyPatch) -> None:
    assert codec.backend() == "upb"
    monkeypatch.setattr(codec, "_upb_checked", [])
    assert codec.check_upb() is None
    assert codec.check_upb() is None


def test_check_upb_warns_once_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "_upb_checked", [])
    monkeypatch.setattr(codec, "backend", lambda: "python")
    warning = codec.check_upb()
    assert warning is not None
    assert "'python'" in warning
    assert "upb" in warning
    assert codec.check_upb() is None


# --- package hygiene --------------------------------------------------------------------


def run_python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    return proc.stdout


def test_importing_codec_and_proto_package_is_cheap() -> None:
    out = run_python(
        "import json, sys\n"
        "import ant.kube.proto, ant.kube.codec\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('google', 'k8s') or m.startswith('ant.kube.proto.'))))\n"
    )
    assert json.loads(out) == []


def test_generated_modules_import_without_a_k8s_package() -> None:
    modules = [f"ant.kube.proto.{m}" for m in MODULES.values()]
    out = run_python(
        "import importlib, importlib.util, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps([importlib.util.find_spec('k8s') is None,\n"
        "    sorted(m for m in sys.modules if m.split('.')[0] == 'k8s')]))\n"
    )
    assert json.loads(out) == [True, []]


def test_distribution_ships_no_k8s_package() -> None:
    from importlib import metadata

    from setuptools import find_namespace_packages

    # What [tool.setuptools.packages.find] (include = ["ant*"], namespaces) ships.
    packages = find_namespace_packages(where=str(ROOT), include=["ant*"])
    assert "ant.kube.proto" in packages
    assert not [p for p in packages if p == "k8s" or p.startswith("k8s.") or ".k8s" in p]
    files = metadata.files("ant") or []
    assert not [f for f in files if f.parts and f.parts[0] == "k8s"]
    top_level = metadata.distribution("ant").read_text("top_level.txt") or ""
    assert "k8s" not in top_level.split()


def test_generated_tree_matches_module_table() -> None:
    names = {p.name for p in PROTO_DIR.iterdir() if p.is_file()}
    expected = {f"{m}{ext}" for m in MODULES.values() for ext in (".py", ".pyi")}
    assert names == expected | {"__init__.py"}
    for name in sorted(expected):
        text = (PROTO_DIR / name).read_text()
        head = text[:600]
        assert "# Generated by tools/genproto.py" in head, name
        assert any(f"{mod}@{ver}" in head for mod, ver in SOURCE_VERSIONS.items()), name
        assert "\nfrom k8s" not in text, name
        assert "\nimport k8s" not in text, name


def test_a_map_field_is_copied_into_a_dict_of_its_own() -> None:
    from ant.kube.proto import meta_v1_pb2

    meta = meta_v1_pb2.ObjectMeta()
    meta.labels.update({"ant.dev/created-by": "alice", "team": "nlp"})
    copied = codec.map_dict(meta.labels)
    assert type(copied) is dict
    assert copied == {"ant.dev/created-by": "alice", "team": "nlp"}
    copied["team"] = "vision"
    assert meta.labels["team"] == "nlp"
