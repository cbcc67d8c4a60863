"""``ant cache serve``: the read cache in front of the API server (docs/cache.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ant.cli.context import App
from ant.cli.options import listen_address

HELP = "The read cache: serve what ant reads from memory, to exactly the callers allowed it."

cache = typer.Typer(help=HELP, no_args_is_help=True)

SERVE_HELP = """Serve ant's reads from memory: informers keep StatefulSets, Pods, Services, Nodes
and Events in sync; every request is authenticated (TokenReview) and authorized
(SubjectAccessReview) against the API server. Credentials: --kubeconfig/--context, or the
in-cluster service account. Stops on SIGTERM or Ctrl-C."""


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for item in values or [] for v in item.split(",") if v.strip())


@cache.command("serve", help=SERVE_HELP, short_help="Serve ant's reads from memory.")
def serve(
    ctx: typer.Context,
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Address to serve on, HOST:PORT.")
    ] = "127.0.0.1:8443",
    tls_cert_file: Annotated[
        str | None,
        typer.Option("--tls-cert-file", metavar="FILE", help="Serving certificate (PEM)."),
    ] = None,
    tls_private_key_file: Annotated[
        str | None,
        typer.Option("--tls-private-key-file", metavar="FILE", help="Its private key (PEM)."),
    ] = None,
    cert_dir: Annotated[
        str | None,
        typer.Option(
            "--cert-dir",
            metavar="DIR",
            help="Where a self-signed certificate is made when none is given "
            "(default: ~/.cache/ant/cache-certs).",
        ),
    ] = None,
    tls_san: Annotated[
        list[str] | None,
        typer.Option(
            "--tls-san", metavar="HOST", help="Extra host name or IP for a self-signed certificate."
        ),
    ] = None,
    namespaces: Annotated[
        list[str] | None,
        typer.Option(
            "--namespaces", metavar="NS,...", help="Watch only these namespaces (comma-separated)."
        ),
    ] = None,
    ignore_namespaces: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-namespaces",
            metavar="NS,...",
            help="Namespaces left out of a cluster-wide watch "
            "(default: kube-system,kube-node-lease).",
        ),
    ] = None,
    resources: Annotated[
        list[str] | None,
        typer.Option(
            "--resources",
            metavar="RESOURCE,...",
            help="What to cache (default: statefulsets,pods,services,nodes,events).",
        ),
    ] = None,
    strip_annotation: Annotated[
        list[str] | None,
        typer.Option(
            "--strip-annotation",
            metavar="KEY",
            help="Also drop this annotation from stored objects (managedFields and "
            "last-applied-configuration always go).",
        ),
    ] = None,
    strip_field: Annotated[
        list[str] | None,
        typer.Option(
            "--strip-field",
            metavar="RESOURCE:PATH",
            help="RESOURCE:PATH, e.g. pods:spec.containers.env (* for all): drop this field "
            "from stored objects; reads of them will lack it.",
        ),
    ] = None,
    token_ttl: Annotated[
        float, typer.Option("--token-ttl", help="Seconds a TokenReview answer is reused.")
    ] = 10.0,
    authz_ttl: Annotated[
        float,
        typer.Option("--authz-ttl", help="Seconds a SubjectAccessReview answer is reused."),
    ] = 10.0,
    rv_wait: Annotated[
        float,
        typer.Option(
            "--rv-wait", help="Longest wait for a resourceVersion a reader asks for, then 504."
        ),
    ] = 2.0,
    watch_timeout: Annotated[
        int, typer.Option("--watch-timeout", help="Seconds each watch request lasts.")
    ] = 300,
    max_staleness: Annotated[
        float,
        typer.Option(
            "--max-staleness",
            help="Seconds a resource may go without a working watch before its reads "
            "and /readyz answer 503.",
        ),
    ] = 5.0,
    plain_http: Annotated[
        bool,
        typer.Option("--plain-http", help="No TLS (loopback only: tests and benchmarks)."),
    ] = False,
) -> None:
    from ant.cache.service import DEFAULT_IGNORED, CacheService, Options
    from ant.cache.store import LAST_APPLIED, Strip
    from ant.cli.serving import server_clients, server_logger, until_signalled
    from ant.errors import UsageError

    app: App = ctx.obj
    host, port = listen_address(listen, "0.0.0.0:8443")
    fields: dict[str, tuple[str, ...]] = {}
    for spec in strip_field or []:
        resource, sep, path = spec.partition(":")
        if not sep or not path:
            raise UsageError(f"--strip-field {spec!r}: expected RESOURCE:PATH")
        fields[resource] = (*fields.get(resource, ()), path)
    cache_home = Path(app.env.vars.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    options = Options(
        host=host,
        port=port,
        namespaces=_split(namespaces),
        ignore_namespaces=_split(ignore_namespaces) if ignore_namespaces else DEFAULT_IGNORED,
        resources=_split(resources) or Options.resources,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_private_key_file,
        cert_dir=Path(cert_dir) if cert_dir else cache_home / "ant" / "cache-certs",
        tls_sans=_split(tls_san),
        strip=Strip(frozenset({LAST_APPLIED, *(strip_annotation or [])}), fields),
        token_ttl=token_ttl,
        allowed_ttl=authz_ttl,
        denied_ttl=authz_ttl,
        rv_wait=rv_wait,
        watch_timeout=watch_timeout,
        max_staleness=max_staleness,
        plain_http=plain_http,
    )

    logger = server_logger(app)
    client, reviews = server_clients(app)
    service = CacheService(client, reviews, options)
    with until_signalled(client, reviews) as stop:
        service.start()
        try:
            app.terminal.info(
                f"ant cache serving on {service.url} (context {app.kubeconfig.context})"
            )
            synced = False
            while not stop.wait(0.2):
                if not synced and service.store.synced:
                    synced = True
                    service.release_memory()
                    counts = ", ".join(f"{n} {t.count}" for n, t in service.store.tables.items())
                    logger.info("synced: %s", counts)
        finally:
            service.close()
    app.terminal.info("ant cache stopped")
