"""Generate ant/kube/proto from the upstream Kubernetes .proto files.

    python tools/genproto.py            # (re)write ant/kube/proto
    python tools/genproto.py --check    # exit 1 when the committed tree differs

The sources are the ``generated.proto`` files of the Go modules ``k8s.io/api`` and
``k8s.io/apimachinery`` at the version the dev cluster pins (``K8S_VERSION`` in
devcluster/versions.env: v1.X.Y -> v0.X.Y). ``go mod download`` fetches them into the
Go module cache (offline once cached). The wanted packages and everything they import
are compiled with grpcio-tools' protoc (``--python_out``) and mypy-protobuf
(``--mypy_out``, typed stubs), then moved to flat module names inside ant's own package
(``k8s.io/api/apps/v1/generated.proto`` -> ``ant/kube/proto/apps_v1_pb2.py``) with their
imports rewritten, so no top-level ``k8s`` package is ever installed. The descriptors keep
their upstream file names (``k8s.io/api/apps/v1/generated.proto``) and proto packages
(``k8s.io.api.apps.v1``), so the wire format and full names are exactly upstream's.

ant's own .proto files (``OWN_PROTOS``, e.g. the cache's ``ant/cache/proto/jobs.proto``)
are compiled by the same protoc and plugin, in place: ``<dir>/<name>.proto`` ->
``<dir>/<name>_pb2.py`` and ``.pyi``, module ``ant.cache.proto.jobs_pb2``. They import no
Kubernetes proto, so they need no rewriting; ``--check`` covers them too.

The output depends only on the pinned versions and the tool versions (grpcio-tools,
mypy-protobuf); running it twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS_ENV = ROOT / "devcluster" / "versions.env"
OUT_DIR = ROOT / "ant" / "kube" / "proto"
PACKAGE = "ant.kube.proto"

# Packages ant uses; their imports are added transitively.
WANTED = (
    "k8s.io/api/core/v1",
    "k8s.io/api/apps/v1",
    "k8s.io/api/autoscaling/v1",
    "k8s.io/api/scheduling/v1",
    "k8s.io/api/scheduling/v1beta1",
    "k8s.io/api/authentication/v1",
    "k8s.io/api/authorization/v1",
    "k8s.io/api/events/v1",
    "k8s.io/api/policy/v1",
    "k8s.io/api/coordination/v1",
    "k8s.io/apimachinery/pkg/apis/meta/v1",
    "k8s.io/apimachinery/pkg/runtime",
    "k8s.io/apimachinery/pkg/runtime/schema",
    "k8s.io/apimachinery/pkg/util/intstr",
    "k8s.io/apimachinery/pkg/api/resource",
)

# Flat module names for apimachinery packages (named like their Go packages).
# k8s.io/api/<group>/<version> becomes <group>_<version>.
APIMACHINERY_NAMES = {
    "k8s.io/apimachinery/pkg/apis/meta/v1": "meta_v1",
    "k8s.io/apimachinery/pkg/runtime": "runtime",
    "k8s.io/apimachinery/pkg/runtime/schema": "runtime_schema",
    "k8s.io/apimachinery/pkg/util/intstr": "intstr",
    "k8s.io/apimachinery/pkg/api/resource": "resource",
}

# ant's own protos, relative to the repository root; compiled next to their source.
OWN_PROTOS = ("ant/cache/proto/jobs.proto",)

GO_MODULES = ("k8s.io/api", "k8s.io/apimachinery")
PROTO_NAME = "generated.proto"
IMPORT_RE = re.compile(r'^import\s+(?:public\s+|weak\s+)?"([^"]+)";', re.MULTILINE)
# `from k8s.io.api.core.v1 import generated_pb2 as alias` in both .py and .pyi output.
FROM_IMPORT_RE = re.compile(
    r"^from ((?:k8s\.io)(?:\.\w+)+) import generated_pb2 as (\w+)$", re.MULTILINE
)
UNUSED_IMPORT_WARNING = re.compile(r"^\S+\.proto:\d+:\d+: warning: Import \S+ is unused\.$")


class GenError(Exception):
    pass


@dataclass(frozen=True)
class Source:
    go_package: str  # k8s.io/api/apps/v1
    module: str  # apps_v1 (the flat name, without _pb2)

    @property
    def proto_path(self) -> str:
        return f"{self.go_package}/{PROTO_NAME}"

    @property
    def protoc_module(self) -> str:
        """The dotted module protoc names it after (k8s.io.api.apps.v1.generated_pb2)."""
        return self.go_package.replace("/", ".") + ".generated_pb2"


def flat_name(go_package: str) -> str:
    if go_package in APIMACHINERY_NAMES:
        return APIMACHINERY_NAMES[go_package]
    prefix = "k8s.io/api/"
    parts = go_package.removeprefix(prefix).split("/")
    if not go_package.startswith(prefix) or len(parts) != 2:
        raise GenError(
            f"no flat module name for {go_package}: add it to APIMACHINERY_NAMES in "
            "tools/genproto.py"
        )
    return "_".join(p.replace(".", "_").replace("-", "_") for p in parts)


def k8s_version() -> str:
    for line in VERSIONS_ENV.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "K8S_VERSION":
            value = value.strip().strip("'\"")
            m = re.fullmatch(r"v1\.(\d+)\.(\d+)", value)
            if not m:
                raise GenError(f"{VERSIONS_ENV}: K8S_VERSION={value!r} is not v1.X.Y")
            return f"v0.{m.group(1)}.{m.group(2)}"
    raise GenError(f"{VERSIONS_ENV}: no K8S_VERSION")


def download_modules(version: str) -> dict[str, Path]:
    """`go mod download` the source modules; returns module path -> directory."""
    go = shutil.which("go")
    if go is None:
        raise GenError("`go` is not on PATH: it is needed to fetch the upstream .proto files")
    args = [go, "mod", "download", "-json", *(f"{m}@{version}" for m in GO_MODULES)]
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory(prefix="genproto-go-") as tmp:
        proc = subprocess.run(args, check=False, cwd=tmp, env=env, capture_output=True, text=True)
    dirs: dict[str, Path] = {}
    errors: list[str] = []
    decoder = json.JSONDecoder()
    text, pos = proc.stdout, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        info, pos = decoder.raw_decode(text, pos)
        if info.get("Error"):
            errors.append(f"{info.get('Path')}@{info.get('Version')}: {info['Error']}")
        elif info.get("Dir"):
            dirs[info["Path"]] = Path(info["Dir"])
    if errors or proc.returncode != 0 or set(dirs) != set(GO_MODULES):
        detail = "\n".join(errors) or proc.stderr.strip() or "no module directories reported"
        raise GenError(f"go mod download failed:\n{detail}")
    return dirs


def source_file(dirs: dict[str, Path], proto_path: str) -> Path:
    for module in sorted(dirs, key=len, reverse=True):
        if proto_path.startswith(module + "/"):
            path = dirs[module] / proto_path.removeprefix(module + "/")
            if not path.is_file():
                raise GenError(f"{proto_path}: not found in {dirs[module]}")
            return path
    raise GenError(f"{proto_path}: not in any of {', '.join(GO_MODULES)}")


def closure(dirs: dict[str, Path]) -> dict[str, Source]:
    """Every .proto the wanted packages need, keyed by proto path."""
    sources: dict[str, Source] = {}
    todo = [f"{p}/{PROTO_NAME}" for p in WANTED]
    while todo:
        proto_path = todo.pop()
        if proto_path in sources:
            continue
        if not proto_path.endswith("/" + PROTO_NAME):
            raise GenError(f"unexpected import {proto_path}: only generated.proto is handled")
        go_package = proto_path.removesuffix("/" + PROTO_NAME)
        sources[proto_path] = Source(go_package, flat_name(go_package))
        text = source_file(dirs, proto_path).read_text()
        todo.extend(IMPORT_RE.findall(text))
    names: dict[str, str] = {}
    for src in sources.values():
        if src.module in names:
            raise GenError(f"{src.go_package} and {names[src.module]} both map to {src.module}_pb2")
        names[src.module] = src.go_package
    return dict(sorted(sources.items()))


def run_protoc(proto_root: Path, out: Path, protos: list[str]) -> None:
    plugin = shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent))
    plugin = plugin or shutil.which("protoc-gen-mypy")
    if plugin is None:
        raise GenError("protoc-gen-mypy (mypy-protobuf) not found: run `make install`")
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"--plugin=protoc-gen-mypy={plugin}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        *protos,
    ]
    proc = subprocess.run(args, check=False, cwd=proto_root, capture_output=True, text=True)
    noise = [
        line
        for line in proc.stderr.splitlines()
        if line.strip()
        and not UNUSED_IMPORT_WARNING.match(line)
        and not line.startswith("Writing mypy to ")
    ]
    if proc.returncode != 0:
        raise GenError("protoc failed:\n" + "\n".join(noise or [proc.stderr]))
    for line in noise:
        print(f"protoc: {line}", file=sys.stderr)


def tool_versions() -> str:
    return ", ".join(f"{d} {metadata.version(d)}" for d in ("grpcio-tools", "mypy-protobuf"))


def rewrite(text: str, sources: dict[str, Source], src: Source, *, stub: bool) -> str:
    by_protoc_module = {s.protoc_module: s for s in sources.values()}

    def repl(m: re.Match[str]) -> str:
        target = by_protoc_module.get(m.group(1) + ".generated_pb2")
        if target is None:
            raise GenError(f"{src.proto_path}: import of unknown module {m.group(1)}")
        return f"from {PACKAGE} import {target.module}_pb2 as {m.group(2)}"

    text = FROM_IMPORT_RE.sub(repl, text)
    if not stub:
        old = f"_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, '{src.protoc_module}', "
        new = f"_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, '{PACKAGE}.{src.module}_pb2', "
        if text.count(old) != 1:
            raise GenError(f"{src.proto_path}: unexpected protoc output (module name)")
        text = text.replace(old, new)
    leftover = re.search(r"^\s*(?:from|import) k8s\b.*$", text, re.MULTILINE)
    if leftover:
        raise GenError(f"{src.proto_path}: import left unrewritten: {leftover.group(0)}")
    return text


def header(src: Source, versions: dict[str, str]) -> str:
    module = next(m for m in GO_MODULES[::-1] if src.go_package.startswith(m + "/"))
    return (
        "# Generated by tools/genproto.py -- DO NOT EDIT; run `make proto` instead.\n"
        f"# Source: {src.proto_path} from the Go module {module}@{versions[module]}\n"
        f"# Tools: {tool_versions()}\n"
    )


def add_header(text: str, head: str) -> str:
    coding = "# -*- coding: utf-8 -*-\n"
    if text.startswith(coding):
        return coding + head + text.removeprefix(coding)
    return head + text


INIT_TEMPLATE = '''\
# Generated by tools/genproto.py -- DO NOT EDIT; run `make proto` instead.
"""Python classes for the Kubernetes protobuf API, generated from upstream .proto files.

Generated by tools/genproto.py (``make proto``; ``make proto-check`` fails on drift)
from the ``generated.proto`` files of the Go modules
{sources}
with grpcio-tools' protoc (``*_pb2.py``) and mypy-protobuf (``*_pb2.pyi``, typed stubs
for mypy).

Layout: one flat module per upstream proto package, named after its Go import path
(``k8s.io/api/<group>/<version>`` -> ``<group>_<version>_pb2``; apimachinery packages
after their Go package name). These flat names are the friendly aliases to use; there
is no ``k8s`` package. Descriptors keep upstream's file names and proto packages
(``k8s.io.api.apps.v1.StatefulSet``), so the wire format is exactly upstream's.

{table}

Import the modules lazily, inside functions (ruff's TID253 bans module-level imports of
``ant.kube.proto`` so that ``ant --help`` stays fast); this package's ``__init__`` imports
nothing::

    def f() -> None:
        from ant.kube.proto import apps_v1_pb2, meta_v1_pb2

        sts = apps_v1_pb2.StatefulSet()
        opts = meta_v1_pb2.ListOptions(labelSelector="app=x")

Python keyword clash: ``ListMeta.continue`` / ``ListOptions.continue`` are read with
``getattr(msg, "continue")`` and set with ``setattr``. ``ant.kube.codec`` wraps the
envelope, registry and watch framing.
"""

# Go module path -> version the modules below were generated from.
SOURCE_VERSIONS: dict[str, str] = {versions}

# Upstream .proto file -> module under ant.kube.proto.
MODULES: dict[str, str] = {{
{modules}}}
'''


def init_text(sources: dict[str, Source], versions: dict[str, str]) -> str:
    rows = [(f"``{PACKAGE}.{s.module}_pb2``", f"``{s.proto_path}``") for s in sources.values()]
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    rule = f"{'=' * w1} {'=' * w2}"
    table = "\n".join(
        [rule, f"{'Module':<{w1}} Upstream file", rule]
        + [f"{a:<{w1}} {b:<{w2}}".rstrip() for a, b in rows]
        + [rule]
    )
    modules = "".join(f'    "{s.proto_path}": "{s.module}_pb2",\n' for s in sources.values())
    return INIT_TEMPLATE.format(
        sources=" and ".join(f"``{m}@{v}``" for m, v in versions.items()),
        table=table,
        versions=json.dumps(versions),
        modules=modules,
    )


def generate(dest: Path) -> list[str]:
    """Write the whole generated package into ``dest`` (an empty directory)."""
    version = k8s_version()
    dirs = download_modules(version)
    versions = dict.fromkeys(GO_MODULES, version)
    sources = closure(dirs)
    with tempfile.TemporaryDirectory(prefix="genproto-") as tmp:
        proto_root, out = Path(tmp) / "root", Path(tmp) / "out"
        out.mkdir()
        for proto_path in sources:
            target = proto_root / proto_path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_file(dirs, proto_path), target)
        run_protoc(proto_root, out, list(sources))
        written = []
        for src in sources.values():
            generated = out / src.proto_path.replace("k8s.io/", "k8s/io/", 1)
            for suffix, stub in ((".py", False), (".pyi", True)):
                path = generated.with_name("generated_pb2" + suffix)
                text = rewrite(path.read_text(), sources, src, stub=stub)
                name = f"{src.module}_pb2{suffix}"
                (dest / name).write_text(add_header(text, header(src, versions)))
                written.append(name)
    (dest / "__init__.py").write_text(init_text(sources, versions))
    written.append("__init__.py")
    return sorted(written)


def generate_own(dest: Path) -> list[str]:
    """Compile OWN_PROTOS into ``dest``, mirroring their paths; returns those paths."""
    run_protoc(ROOT, dest, list(OWN_PROTOS))
    written = []
    for proto in OWN_PROTOS:
        head = (
            "# Generated by tools/genproto.py -- DO NOT EDIT; run `make proto` instead.\n"
            f"# Source: {proto}\n"
            f"# Tools: {tool_versions()}\n"
        )
        for suffix in (".py", ".pyi"):
            name = proto.removesuffix(".proto") + "_pb2" + suffix
            path = dest / name
            path.write_text(add_header(path.read_text(), head))
            written.append(name)
    return written


def own_drift(fresh: Path, names: list[str]) -> list[tuple[str, str]]:
    """(differs|missing|extra, path) between a fresh generation of OWN_PROTOS and the tree."""
    drift = []
    for name in names:
        target = ROOT / name
        if not target.is_file():
            drift.append(("missing", name))
        elif not filecmp.cmp(fresh / name, target, shallow=False):
            drift.append(("differs", name))
    for folder in sorted({str(Path(p).parent) for p in OWN_PROTOS}):
        for path in sorted((ROOT / folder).glob("*_pb2.py*")):
            name = str(path.relative_to(ROOT))
            if name not in names:
                drift.append(("extra", name))
    return drift


def tree(path: Path) -> set[str]:
    if not path.is_dir():
        return set()
    return {
        str(p.relative_to(path))
        for p in path.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail when ant/kube/proto differs from the output"
    )
    args = parser.parse_args(argv)
    rel = OUT_DIR.relative_to(ROOT)
    with (
        tempfile.TemporaryDirectory(prefix="genproto-out-") as tmp,
        tempfile.TemporaryDirectory(prefix="genproto-own-") as own_tmp,
    ):
        fresh, own_fresh = Path(tmp), Path(own_tmp)
        try:
            names = generate(fresh)
            own_names = generate_own(own_fresh)
        except GenError as e:
            print(f"genproto: {e}", file=sys.stderr)
            return 2
        new, old = tree(fresh), tree(OUT_DIR)
        changed = sorted(
            n for n in new & old if not filecmp.cmp(fresh / n, OUT_DIR / n, shallow=False)
        )
        missing, extra = sorted(new - old), sorted(old - new)
        own = own_drift(own_fresh, own_names)
        if args.check:
            if not (changed or missing or extra or own):
                print(
                    f"genproto: {rel} is up to date ({len(names)} files), "
                    f"and ant's own protos ({len(own_names)} files)"
                )
                return 0
            print("genproto: generated code differs from a fresh generation:", file=sys.stderr)
            for label, files in (("differs", changed), ("missing", missing), ("extra", extra)):
                for n in files:
                    print(f"  {label}: {rel / n}", file=sys.stderr)
            for label, n in own:
                print(f"  {label}: {n}", file=sys.stderr)
            print("run `make proto` and commit the result", file=sys.stderr)
            return 1
        for label, n in own:
            if label == "extra":
                (ROOT / n).unlink()
            else:
                shutil.copyfile(own_fresh / n, ROOT / n)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for n in extra:
            (OUT_DIR / n).unlink()
        for n in changed + missing:
            shutil.copyfile(fresh / n, OUT_DIR / n)
        print(
            f"genproto: wrote {rel}: {len(changed)} changed, {len(missing)} new, "
            f"{len(extra)} removed, {len(names)} files; ant's own protos: "
            f"{len(own)} written or removed, {len(own_names)} files"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
