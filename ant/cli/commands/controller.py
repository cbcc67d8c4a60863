"""``ant controller run``: the controller that makes jobs end (docs/controller.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ant.cli.context import App
from ant.cli.options import listen_address

HELP = "The ant controller: jobs that succeed, fail, restart whole, wait for others, expire."

controller = typer.Typer(help=HELP, no_args_is_help=True)

RUN_HELP = """Watch ant's jobs and make their transitions: Succeeded when every replica exited 0,
whole-job restarts up to --max-restarts then Failed, --after dependencies, TTL deletion.
Safe to run several: one leads through a Lease, the others stand by. Credentials:
--kubeconfig/--context, or the in-cluster service account. Stops on SIGTERM or Ctrl-C
(releasing the Lease)."""


@controller.command("run", help=RUN_HELP)
def run(
    ctx: typer.Context,
    listen: Annotated[
        str,
        typer.Option("--listen", metavar="HOST:PORT", help="Probes and metrics, HOST:PORT."),
    ] = "127.0.0.1:8444",
    plain_http: Annotated[
        bool, typer.Option("--plain-http", help="No TLS (loopback only: tests, dev cluster).")
    ] = False,
    tls_cert_file: Annotated[
        str | None,
        typer.Option("--tls-cert-file", metavar="FILE", help="Serving certificate (PEM)."),
    ] = None,
    tls_private_key_file: Annotated[
        str | None,
        typer.Option("--tls-private-key-file", metavar="FILE", help="Its private key (PEM)."),
    ] = None,
    namespaces: Annotated[
        str | None,
        typer.Option("--namespaces", metavar="NS,...", help="Only these namespaces' jobs."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Jobs reconciled at once.")] = 4,
    lease_namespace: Annotated[
        str, typer.Option("--lease-namespace", help="Where the leader-election Lease lives.")
    ] = "ant-system",
    lease_duration: Annotated[
        float, typer.Option("--lease-duration", help="Seconds a stand-by waits to take over.")
    ] = 15.0,
    renew_deadline: Annotated[
        float, typer.Option("--renew-deadline", help="Seconds a leader keeps trying to renew.")
    ] = 10.0,
    retry_period: Annotated[
        float, typer.Option("--retry-period", help="Seconds between Lease attempts.")
    ] = 2.0,
) -> None:
    import logging

    from ant.cli.serving import server_clients, server_logger, until_signalled
    from ant.controller.lease import Timing
    from ant.controller.service import ControllerService, Options
    from ant.jobs.schema import validate_namespace

    app: App = ctx.obj
    host, port = listen_address(listen, "127.0.0.1:8444")
    only = tuple(n.strip() for n in (namespaces or "").split(",") if n.strip())
    for namespace in only:
        validate_namespace(namespace, "--namespaces")
    validate_namespace(lease_namespace, "--lease-namespace")
    cache_home = Path(app.env.vars.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    options = Options(
        host=host,
        port=port,
        plain_http=plain_http,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_private_key_file,
        cert_dir=cache_home / "ant" / "controller-certs",
        namespaces=only,
        workers=workers,
        lease_namespace=lease_namespace,
        timing=Timing(lease_duration, renew_deadline, retry_period),
    )
    server_logger(app)
    # Every request is an INFO line of the transport (for `-v`): here, only with -vv.
    quiet = app.options.verbose < 2
    logging.getLogger("ant.kube.transport").setLevel(logging.WARNING if quiet else logging.DEBUG)
    client, reviews = server_clients(app)
    service = ControllerService(client, reviews, options)
    with until_signalled(client, reviews) as stop:
        service.start()
        try:
            app.terminal.info(
                f"ant controller {service.identity} on {service.url}"
                f" (context {app.kubeconfig.context})"
            )
            stop.wait()
        finally:
            service.close()
    app.terminal.info("ant controller stopped")
