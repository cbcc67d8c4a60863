"""ant.kube.convert: Kubernetes JSON <-> protobuf messages; no cluster needed."""

from __future__ import annotations

import copy
import importlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ant import errors
from ant.kube import codec, convert, jsonvalues
from ant.kube.convert import to_dict, to_message
from ant.kube.proto import (
    MODULES,
    apps_v1_pb2,
    authentication_v1_pb2,
    coordination_v1_pb2,
    core_v1_pb2,
    intstr_pb2,
    meta_v1_pb2,
    resource_pb2,
    runtime_pb2,
)

# 2026-11-24T15:00:00Z in seconds since the epoch.
NOV_24_15H = int(datetime(2026, 11, 24, 15, tzinfo=UTC).timestamp())


def statefulset_dict() -> dict[str, Any]:
    """A StatefulSet as a user writes it, touching every kind of field ant sends."""
    labels = {"app.kubernetes.io/name": "train", "ant.dev/job": "train-1"}
    return {
        "metadata": {
            "name": "train-1",
            "namespace": "ml",
            "labels": labels,
            "annotations": {"ant.dev/spec": '{"tpu": 4}', "note": ""},
        },
        "spec": {
            "replicas": 4,
            "serviceName": "train-1",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"ant.dev/job": "train-1"}},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "partition": 0},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "automountServiceAccountToken": False,
                    "nodeSelector": {
                        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
                        "cloud.google.com/gke-tpu-topology": "2x2",
                    },
                    "tolerations": [
                        {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"},
                        {
                            "key": "node.kubernetes.io/unreachable",
                            "operator": "Exists",
                            "effect": "NoExecute",
                            "tolerationSeconds": 300,
                        },
                    ],
                    "containers": [
                        {
                            "name": "trainer",
                            "image": "registry.example/ml/trainer:1.2.3",
                            "command": ["python", "-m", "train"],
                            "args": ["--epochs", "10"],
                            "env": [
                                {"name": "EPOCHS", "value": "10"},
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {
                                    "name": "TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
                                },
                            ],
                            "resources": {
                                "limits": {"google.com/tpu": 4, "cpu": "500m", "memory": "16Gi"},
                                "requests": {"google.com/tpu": 4, "cpu": "500m"},
                            },
                            "ports": [{"name": "dist", "containerPort": 29500, "protocol": "TCP"}],
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 10,
                            },
                            "livenessProbe": {
                                "tcpSocket": {"port": 29500},
                                "failureThreshold": 3,
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "shm", "mountPath": "/dev/shm"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
                        {"name": "config", "configMap": {"name": "train-config"}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "",
                        "resources": {"requests": {"storage": "100Gi"}},
                    },
                }
            ],
        },
    }


def service_dict() -> dict[str, Any]:
    return {
        "metadata": {"name": "train-1", "labels": {"ant.dev/job": "train-1"}},
        "spec": {
            "clusterIP": "None",
            "selector": {"ant.dev/job": "train-1"},
            "ports": [
                {"name": "dist", "port": 29500, "targetPort": 29500},
                {"name": "http", "port": 80, "targetPort": "http"},
            ],
        },
    }


def wire(msg: Any, api_version: str, kind: str) -> Any:
    """``msg`` through the protobuf wire format and back."""
    envelope = codec.decode_envelope(codec.encode(msg, api_version, kind))
    assert (envelope.api_version, envelope.kind) == (api_version, kind)
    return type(msg).FromString(envelope.raw)


def quantities_as_strings(obj: Any) -> Any:
    """The documented normalisation: numbers given for quantities come back as strings."""
    out = copy.deepcopy(obj)
    for section in ("limits", "requests"):
        resources = out["spec"]["template"]["spec"]["containers"][0]["resources"][section]
        resources.update({k: str(v) for k, v in resources.items()})
    return out


def error(obj: Any, cls: type[Any] = apps_v1_pb2.StatefulSet) -> errors.ValidationError:
    with pytest.raises(errors.ValidationError) as info:
        to_message(obj, cls)
    assert "\n" not in str(info.value)
    return info.value


# --- round trips ---------------------------------------------------------------------


def test_statefulset_round_trip_through_the_wire() -> None:
    given_dict = statefulset_dict()
    msg = to_message(given_dict, apps_v1_pb2.StatefulSet)
    back = to_dict(wire(msg, "apps/v1", "StatefulSet"))
    assert back == quantities_as_strings(given_dict)


def test_statefulset_fields_land_where_the_proto_has_them() -> None:
    sts = to_message(statefulset_dict(), apps_v1_pb2.StatefulSet)
    pod = sts.spec.template.spec
    container = pod.containers[0]
    assert sts.spec.replicas == 4
    assert container.resources.limits["google.com/tpu"].string == "4"
    assert container.resources.limits["cpu"].string == "500m"
    # Inline Go structs: the JSON keys sit in the parent, the proto has a field between.
    assert container.readinessProbe.handler.httpGet.port == intstr_pb2.IntOrString(
        type=1, strVal="http"
    )
    assert container.livenessProbe.handler.tcpSocket.port.intVal == 29500
    assert pod.volumes[0].volumeSource.emptyDir.sizeLimit.string == "8Gi"
    assert pod.volumes[1].volumeSource.configMap.localObjectReference.name == "train-config"
    assert container.env[2].valueFrom.secretKeyRef.localObjectReference.name == "hf"
    assert sts.spec.updateStrategy.rollingUpdate.maxUnavailable.strVal == "25%"
    # Set to a zero value is still set (proto2 presence): "" and 0 and False mean something.
    claim = sts.spec.volumeClaimTemplates[0].spec
    assert claim.HasField("storageClassName")
    assert sts.spec.updateStrategy.rollingUpdate.HasField("partition")
    assert pod.HasField("automountServiceAccountToken")
    assert not pod.HasField("hostNetwork")


def test_service_round_trip_with_int_or_string_ports() -> None:
    msg = to_message(service_dict(), core_v1_pb2.Service)
    assert [p.targetPort.type for p in msg.spec.ports] == [0, 1]
    assert to_dict(wire(msg, "v1", "Service")) == service_dict()


def test_to_message_is_the_inverse_of_to_dict_for_a_server_object() -> None:
    sts = to_message(statefulset_dict(), apps_v1_pb2.StatefulSet)
    sts.metadata.uid = "0b6c"
    sts.metadata.creationTimestamp.seconds = NOV_24_15H
    sts.status.replicas = 4
    sts.status.readyReplicas = 0
    decoded = wire(sts, "apps/v1", "StatefulSet")
    assert to_message(to_dict(decoded), apps_v1_pb2.StatefulSet) == decoded


def test_api_version_and_kind_are_accepted_on_objects_and_dropped() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "spec": {
            "volumeClaimTemplates": [
                {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"}}
            ]
        },
    }
    back = to_dict(to_message(obj, apps_v1_pb2.StatefulSet))
    assert back == {"spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}}]}}
    # ... but not inside things that are no Kubernetes object.
    e = error({"spec": {"selector": {"kind": "x"}}})
    assert e.field == "spec.selector.kind"


def test_null_leaves_a_field_unset() -> None:
    msg = to_message(
        {"metadata": {"name": "x", "labels": None}, "spec": {"replicas": None}},
        apps_v1_pb2.StatefulSet,
    )
    assert not msg.spec.HasField("replicas")
    assert to_dict(msg) == {"metadata": {"name": "x"}, "spec": {}}


def test_empty_objects_are_present_and_empty_lists_absent() -> None:
    obj = {"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {}}]}}}}
    msg = to_message(obj, apps_v1_pb2.StatefulSet)
    assert msg.spec.template.spec.containers[0].HasField("resources")
    assert to_dict(msg) == obj
    assert to_dict(to_message({"metadata": {"finalizers": []}}, apps_v1_pb2.StatefulSet)) == {
        "metadata": {}
    }


def test_to_dict_keeps_fields_the_server_set_to_empty() -> None:
    # What a Go server sends: non-pointer fields written even when empty.
    sent = apps_v1_pb2.StatefulSet(
        metadata=meta_v1_pb2.ObjectMeta(
            name="train-1",
            generateName="",
            namespace="ml",
            generation=0,
            creationTimestamp=meta_v1_pb2.Time(),  # Go's zero Time: an empty message
            labels={},
        ),
        spec=apps_v1_pb2.StatefulSetSpec(
            replicas=0,
            serviceName="",
            template=core_v1_pb2.PodTemplateSpec(
                metadata=meta_v1_pb2.ObjectMeta(),
                spec=core_v1_pb2.PodSpec(
                    containers=[
                        core_v1_pb2.Container(
                            name="main",
                            resources=core_v1_pb2.ResourceRequirements(),
                            stdin=False,
                        )
                    ]
                ),
            ),
        ),
        status=apps_v1_pb2.StatefulSetStatus(replicas=0, currentRevision=""),
    )
    decoded = apps_v1_pb2.StatefulSet.FromString(sent.SerializeToString())
    assert to_dict(decoded) == {
        "metadata": {"name": "train-1", "generateName": "", "namespace": "ml", "generation": 0},
        "spec": {
            "replicas": 0,
            "serviceName": "",
            "template": {
                "metadata": {},
                "spec": {"containers": [{"name": "main", "resources": {}, "stdin": False}]},
            },
        },
        "status": {"replicas": 0, "currentRevision": ""},
    }


def test_to_dict_sorts_map_keys_like_go() -> None:
    labels = {"b": "2", "a": "1", "c": "3"}
    out = to_dict(to_message({"metadata": {"labels": labels}}, core_v1_pb2.ConfigMap))
    assert list(out["metadata"]["labels"]) == ["a", "b", "c"]


def test_to_dict_rejects_special_types() -> None:
    with pytest.raises(TypeError, match="Quantity"):
        to_dict(resource_pb2.Quantity(string="1"))


# --- special types -------------------------------------------------------------------


def test_time_round_trip_drops_fractions_and_normalises_to_utc() -> None:
    obj = {
        "metadata": {
            "name": "e",
            "creationTimestamp": "2026-11-24T16:00:00.75+01:00",
            "deletionTimestamp": "2026-11-24T15:00:00Z",
        }
    }
    msg = to_message(obj, core_v1_pb2.Event)
    assert msg.metadata.creationTimestamp.seconds == NOV_24_15H
    assert not msg.metadata.creationTimestamp.nanos
    assert to_dict(wire(msg, "v1", "Event"))["metadata"] == {
        "name": "e",
        "creationTimestamp": "2026-11-24T15:00:00Z",
        "deletionTimestamp": "2026-11-24T15:00:00Z",
    }


def test_micro_time_round_trip_keeps_microseconds() -> None:
    obj = {"spec": {"renewTime": "2026-11-24T15:00:00.123456789Z", "leaseDurationSeconds": 15}}
    msg = to_message(obj, coordination_v1_pb2.Lease)
    assert (msg.spec.renewTime.seconds, msg.spec.renewTime.nanos) == (NOV_24_15H, 123_456_000)
    out = to_dict(wire(msg, "coordination.k8s.io/v1", "Lease"))
    assert out == {"spec": {"renewTime": "2026-11-24T15:00:00.123456Z", "leaseDurationSeconds": 15}}
    assert to_message(out, coordination_v1_pb2.Lease) == msg


def test_times_from_yaml_datetimes() -> None:
    # PyYAML turns unquoted timestamps into datetimes; sigs.k8s.io/yaml keeps strings.
    plus_two = timezone(timedelta(hours=2))
    obj = {
        "spec": {
            "acquireTime": datetime(2026, 11, 24, 17, 0, 0, 500_000, tzinfo=plus_two),
            "renewTime": datetime(2026, 11, 24, 15, 0, 0),  # naive: UTC
        }
    }
    spec = to_dict(to_message(obj, coordination_v1_pb2.Lease))["spec"]
    assert spec == {
        "acquireTime": "2026-11-24T15:00:00.500000Z",
        "renewTime": "2026-11-24T15:00:00.000000Z",
    }


def test_zero_times_are_left_out() -> None:
    msg = core_v1_pb2.Event(
        firstTimestamp=meta_v1_pb2.Time(seconds=-62135596800),  # Go's time.Time{}
        lastTimestamp=meta_v1_pb2.Time(seconds=0),  # the epoch is a real time
        eventTime=meta_v1_pb2.MicroTime(),
    )
    assert to_dict(msg) == {"lastTimestamp": "1970-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    "text",
    ["2026-11-24", "2026-11-24 15:00:00Z", "2026-11-24T15:00:00", "2026-02-30T00:00:00Z", "now"],
)
def test_bad_times(text: str) -> None:
    e = error({"metadata": {"creationTimestamp": text}})
    assert e.field == "metadata.creationTimestamp"
    assert "invalid time" in e.message


def test_raw_extension_holds_any_json() -> None:
    data = {"spec": {"template": {"x": [1, 2.5, None, True, "é"]}}, "n": None}
    obj = {"metadata": {"name": "rev-1"}, "data": data, "revision": 3}
    msg = to_message(obj, apps_v1_pb2.ControllerRevision)
    assert msg.data.raw == b'{"spec":{"template":{"x":[1,2.5,null,true,"\xc3\xa9"]}},"n":null}'
    assert to_dict(wire(msg, "apps/v1", "ControllerRevision")) == obj
    assert to_dict(apps_v1_pb2.ControllerRevision(data=runtime_pb2.RawExtension(raw=b"[1]"))) == {
        "data": [1]
    }


def test_raw_extension_with_a_protobuf_object_decodes_it() -> None:
    pod = to_message({"metadata": {"name": "p"}}, core_v1_pb2.Pod)
    event = meta_v1_pb2.WatchEvent(
        type="ADDED", object=runtime_pb2.RawExtension(raw=codec.encode(pod, "v1", "Pod"))
    )
    assert to_dict(event) == {
        "type": "ADDED",
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
    }


def test_raw_extension_with_other_bytes_is_a_decode_error() -> None:
    msg = apps_v1_pb2.ControllerRevision(data=runtime_pb2.RawExtension(raw=b"\xd9\xd9\xf7\xa0"))
    with pytest.raises(errors.DecodeError, match="RawExtension does not hold JSON"):
        to_dict(msg)


def test_raw_extension_rejects_what_json_cannot_hold() -> None:
    e = error({"data": {"when": datetime(2026, 1, 1, tzinfo=UTC)}}, apps_v1_pb2.ControllerRevision)
    assert e.field == "data"
    assert "not representable as JSON" in e.message


def test_managed_fields_round_trip() -> None:
    entry = {
        "manager": "ant",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": "2026-11-24T15:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}}},
    }
    obj = {"metadata": {"name": "x", "managedFields": [entry]}}
    msg = to_message(obj, apps_v1_pb2.StatefulSet)
    assert msg.metadata.managedFields[0].fieldsV1.Raw == b'{"f:spec":{"f:replicas":{}}}'
    assert to_dict(wire(msg, "apps/v1", "StatefulSet")) == obj


def test_bytes_are_base64() -> None:
    obj = {
        "metadata": {"name": "s"},
        "data": {"token": "aGVsbG8=", "empty": ""},
        "stringData": {"plain": "text"},
    }
    msg = to_message(obj, core_v1_pb2.Secret)
    assert dict(msg.data) == {"token": b"hello", "empty": b""}
    assert to_dict(wire(msg, "v1", "Secret")) == obj
    e = error({"data": {"token": "not base64!"}}, core_v1_pb2.Secret)
    assert e.field == "data[token]"
    assert e.message.startswith("data[token]: invalid base64")


def test_yaml_binary_bytes_are_accepted() -> None:
    msg = to_message({"binaryData": {"blob": b"\x00\x01"}}, core_v1_pb2.ConfigMap)
    assert to_dict(msg) == {"binaryData": {"blob": "AAE="}}


def test_string_list_wrappers_are_plain_lists() -> None:
    obj = {"username": "alice", "groups": ["ml"], "extra": {"scopes": ["a", "b"], "none": []}}
    msg = to_message(obj, authentication_v1_pb2.UserInfo)
    assert list(msg.extra["scopes"].items) == ["a", "b"]
    assert to_dict(msg) == obj
    verbs = to_message({"name": "pods", "verbs": ["get", "list"]}, meta_v1_pb2.APIResource)
    assert to_dict(verbs) == {"name": "pods", "verbs": ["get", "list"]}


@pytest.mark.parametrize(
    ("given_value", "stored"),
    [
        ("4", "4"),
        (4, "4"),
        ("500m", "500m"),
        (0.5, "0.5"),
        ("16Gi", "16Gi"),
        ("1.5G", "1.5G"),
        ("1e3", "1e3"),
        ("1E-3", "1E-3"),
        ("+.5k", "+.5k"),
        ("-1", "-1"),
        ("100Ei", "100Ei"),
        (1e20, "1e+20"),
    ],
)
def test_quantities(given_value: Any, stored: str) -> None:
    node = to_message({"status": {"capacity": {"cpu": given_value}}}, core_v1_pb2.Node)
    assert node.status.capacity["cpu"].string == stored
    assert to_dict(node) == {"status": {"capacity": {"cpu": stored}}}


@pytest.mark.parametrize(
    "bad", ["", "4x", "16GB", "1Ki5", "m", "1..5", ". 5", "1e", "1ki", " 4", "4\n", "Infinity"]
)
def test_bad_quantities(bad: str) -> None:
    e = error({"status": {"capacity": {"cpu": bad}}}, core_v1_pb2.Node)
    assert e.field == "status.capacity[cpu]"
    assert e.message.startswith(f"status.capacity[cpu]: {bad!r} is not a quantity")


@pytest.mark.parametrize("bad", [True, None, [], {}, float("nan")])
def test_quantity_wrong_types(bad: Any) -> None:
    obj = {"status": {"capacity": {"cpu": bad}}}
    with pytest.raises(errors.ValidationError, match=r"^status\.capacity\[cpu\]: "):
        to_message(obj, core_v1_pb2.Node)


def test_int_or_string() -> None:
    port = {"spec": {"ports": [{"port": 80, "targetPort": 2**31}]}}
    assert error(port, core_v1_pb2.Service).field == "spec.ports[0].targetPort"
    port["spec"]["ports"][0]["targetPort"] = True
    e = error(port, core_v1_pb2.Service)
    assert str(e) == ("spec.ports[0].targetPort: expected an integer or a string, got boolean true")


def test_duration() -> None:
    assert to_message("1m30s", meta_v1_pb2.Duration).duration == 90 * 10**9  # type: ignore[arg-type]
    with pytest.raises(errors.ValidationError, match=r"^Duration: invalid duration '90'"):
        to_message("90", meta_v1_pb2.Duration)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("-0", 0),
        ("5s", 5 * 10**9),
        ("+5s", 5 * 10**9),
        ("5.s", 5 * 10**9),
        (".5s", 5 * 10**8),
        ("1.004s", 1_004_000_000),
        ("11us", 11_000),
        ("12\u00b5s", 12_000),
        ("12\u03bcs", 12_000),
        ("10.5s4m", 250_500_000_000),
        ("-2m3.4s", -123_400_000_000),
        ("1h2m3s4ms5us6ns", 3_723_004_005_006),
        ("0.3333333333333333333h", 20 * 60 * 10**9),  # Go's float rounding
        ("9223372036854775807ns", 2**63 - 1),
        ("-9223372036854775808ns", -(2**63)),
    ],
)
def test_parse_duration_like_go(text: str, nanos: int) -> None:
    assert jsonvalues.parse_duration(text) == nanos


@pytest.mark.parametrize(
    "bad", ["", "3", "-", "s", ".s", "+.s", "1d", "1.5.s", "9223372036854775808ns", "3000000h"]
)
def test_parse_duration_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        jsonvalues.parse_duration(bad)


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_100, "1.1\u00b5s"),
        (2_200_000, "2.2ms"),
        (3_300_000_000, "3.3s"),
        (245 * 10**9, "4m5s"),
        (3600 * 10**9, "1h0m0s"),
        (18_367_001_000_000, "5h6m7.001s"),
        (480_000_000_001, "8m0.000000001s"),
        (2**63 - 1, "2562047h47m16.854775807s"),
        (-(2**63), "-2562047h47m16.854775808s"),
    ],
)
def test_format_duration_like_go(nanos: int, text: str) -> None:
    assert jsonvalues.format_duration(nanos) == text


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_duration_text_round_trips(nanos: int) -> None:
    assert jsonvalues.parse_duration(jsonvalues.format_duration(nanos)) == nanos


# --- errors --------------------------------------------------------------------------


def test_unknown_field_names_the_full_path_and_a_suggestion() -> None:
    obj = statefulset_dict()
    obj["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    e = error(obj)
    assert str(e) == (
        "spec.template.spec.containers[0].resource: unknown field (did you mean 'resources'?)"
    )
    assert e.field == "spec.template.spec.containers[0].resource"


def test_unknown_field_suggests_across_case_and_says_nothing_when_far() -> None:
    assert error({"spec": {"servicename": "x"}}).hint == "did you mean 'serviceName'?"
    assert str(error({"spec": {"gpus": 4}})) == "spec.gpus: unknown field"
    assert str(error({"metadata": {"name": "x"}, 3: "y"})) == "3: unknown field"


def test_bad_quantity_in_a_resource_list() -> None:
    obj = statefulset_dict()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["google.com/tpu"] = (
        "four"
    )
    assert str(error(obj)) == (
        "spec.template.spec.containers[0].resources.limits[google.com/tpu]: "
        "'four' is not a quantity (e.g. 4, 500m, 1.5, 16Gi, 100M, 1e3)"
    )


def test_wrong_types() -> None:
    assert str(error({"spec": {"replicas": "3"}})) == (
        'spec.replicas: expected an integer, got string "3" (write the number without quotes)'
    )
    assert str(error({"metadata": {"labels": ["app=x"]}})) == (
        "metadata.labels: expected a mapping, got a list"
    )
    assert str(error({"spec": {"volumeClaimTemplates": {"name": "data"}}})) == (
        "spec.volumeClaimTemplates: expected a list, got a mapping"
    )
    assert str(error({"metadata": {"labels": {"tier": 1}}})) == (
        "metadata.labels[tier]: expected a string, got number 1 (quote it: '1')"
    )
    assert str(error({"metadata": {"labels": {"on": True}}})) == (
        "metadata.labels[on]: expected a string, got boolean true (quote it: 'true')"
    )
    assert str(error({"spec": {"replicas": 2.0}})) == (
        "spec.replicas: expected an integer, got number 2.0"
    )
    assert str(error({"spec": {"replicas": 2**31}})) == (
        "spec.replicas: 2147483648 is out of range for int32"
    )
    assert str(error({"spec": {"template": {"spec": {"hostNetwork": "true"}}}})) == (
        'spec.template.spec.hostNetwork: expected a boolean, got string "true" '
        "(write true or false, unquoted)"
    )
    assert str(error(["not", "a", "mapping"])) == "StatefulSet: expected a mapping, got a list"


def test_nulls_inside_lists_and_maps_are_errors() -> None:
    assert error({"metadata": {"labels": {"a": None}}}).field == "metadata.labels[a]"
    assert error({"metadata": {"finalizers": ["x", None]}}).field == "metadata.finalizers[1]"


def test_long_values_are_shortened_in_errors() -> None:
    e = error({"spec": {"replicas": "x" * 500}})
    assert len(str(e)) < 100


def test_path_prefix() -> None:
    with pytest.raises(errors.ValidationError) as info:
        to_message({"replicas": "x"}, apps_v1_pb2.StatefulSetSpec, path="spec")
    assert info.value.field == "spec.replicas"


# --- tables --------------------------------------------------------------------------


def all_messages() -> list[Any]:
    found = []
    for module in MODULES.values():
        pb2 = importlib.import_module(f"ant.kube.proto.{module}")
        found.extend(pb2.DESCRIPTOR.message_types_by_name.values())
    return found


def test_every_inline_entry_matches_generated_fields() -> None:
    seen = {
        (fd.name, fd.message_type.full_name)
        for desc in all_messages()
        for fd in desc.fields
        if fd.message_type is not None and (fd.name, fd.message_type.full_name) in convert.INLINE
    }
    assert seen == convert.INLINE


def test_every_message_type_builds_its_tables() -> None:
    for desc in all_messages():
        convert._table(desc)
        convert._plan(desc)
