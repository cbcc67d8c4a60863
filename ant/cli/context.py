"""What every command gets: global options, the terminal, and a lazily made client."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ant.cli.command_line import GlobalOptions
from ant.cli.environment import Environment
from ant.cli.terminal import Terminal

if TYPE_CHECKING:
    from ant.api import Client as Api
    from ant.cli.settings import Settings
    from ant.jobs.identity import Identity, IdentityCache
    from ant.jobs.ownership import Owner
    from ant.kube.client import Client
    from ant.kube.config import Files, KubeConfig
    from ant.kube.discovery import Discovery


DEFAULT_DEADLINE = 60  # seconds: docs/cli.md and --deadline's help say so


class App:
    def __init__(
        self,
        env: Environment,
        options: GlobalOptions,
        settings: Settings | None = None,
        files: Files | None = None,
    ) -> None:
        from ant.cli.settings import Settings
        from ant.kube.transport import Deadline

        self.env = env
        self.options = options
        self._files = files  # the kubeconfig files, when read already
        # The config file (read on first use): defaults below flags and variables.
        self.settings = settings or Settings.for_env(env.vars)
        self.deadline_seconds = _deadline_seconds(options.deadline)
        # Starts now, with the command: every request and retry of the command checks it.
        self.deadline = Deadline(self.deadline_seconds, hint="--deadline or ANT_DEADLINE sets it")
        self.terminal = Terminal(env, verbosity=options.verbose, on_answered=self.deadline.extend)
        if options.verbose:
            _log_to(self.terminal, logging.DEBUG if options.verbose > 1 else logging.INFO)

    @cached_property
    def kubeconfig_files(self) -> Files:
        """Read once per command: its apps on other clusters share them."""
        from ant.kube import config

        return self._files or config.read_files(self.options.kubeconfig, self.env.vars)

    @cached_property
    def kubeconfig(self) -> KubeConfig:
        from ant.kube import config

        return config.load(
            self.options.kubeconfig,
            self.options.context,
            self.env.vars,
            files=self.kubeconfig_files,
        )

    @cached_property
    def kubeconfig_contexts(self) -> list[str]:
        """Every context of the kubeconfig: the clusters ant may work across."""
        from ant.kube import config

        return config.context_names(self.kubeconfig_files)

    def for_cluster(self, context: str, seconds: float) -> App:
        """This command's app on one of the selected clusters: that context, its own
        deadline of ``seconds``, reads through that context's own cache (docs/clusters.md)."""
        from dataclasses import replace

        options = replace(
            self.options,
            context=context,
            clusters=None,
            all_clusters=False,
            cache_url=None,
            deadline=f"{max(1, round(seconds))}s",
        )
        return App(self.env, options, self.settings, self.kubeconfig_files)

    @property
    def namespace(self) -> str:
        """-n, else ANT_NAMESPACE, else the config file (the context's section first), else
        the kubeconfig context's namespace."""
        if self.options.namespace:
            return self.options.namespace  # validated with the other global options
        configured = self.setting("namespace")
        if configured:
            return str(configured)  # checked when the file was read
        from ant.jobs.schema import validate_namespace

        namespace = self.kubeconfig.namespace
        validate_namespace(namespace, f"the namespace of context {self.kubeconfig.context}")
        return namespace

    def template_writer(self, target: str, *, force: bool) -> str:
        """Who is about to write the pod template of ``target`` (update, rollback): asked
        afresh, since it is recorded; another user's job refused unless ``force``."""
        from ant.jobs import ownership
        from ant.jobs import rollout as ro
        from ant.jobs.identity import whoami

        me = whoami(self.client)
        sts = ro.load(self.client, self.namespace, target)
        probe = ownership.dry_run_patch(self.client, self.namespace, sts.metadata.name)
        self.check_owner(target, sts, force=force, probe=probe, me=me)
        return me.username

    def setting(self, key: str) -> Any:
        """A default from the config file for the context in use (its section, then the
        top), or None; without a kubeconfig, the top-level value."""
        from ant.errors import ConfigError

        try:
            context: str | None = self.options.context or self.kubeconfig.context
        except ConfigError:
            context = None
        return self.settings.get(key, context)

    @property
    def cache_url(self) -> str | None:
        """--cache or ANT_CACHE_URL, else the config file's for this context (``contexts.
        NAME.cache``); None leaves it to the context's ``ant.dev/cache`` extension."""
        return self.options.cache_url or self.setting("cache")

    def named_namespaces(self) -> list[str]:
        """The namespaces the user names for this cluster (kubeconfig's contexts): where
        ``-A`` looks when the API server will not list namespaces."""
        from ant.kube.config import context_namespaces

        return context_namespaces(self.kubeconfig)

    def skipped(self, namespaces: Sequence[str], what: str) -> None:
        """One line on stderr: the namespaces a read across namespaces could not read."""
        if namespaces:
            shown = ", ".join(namespaces[:10]) + (", ..." if len(namespaces) > 10 else "")
            self.terminal.info(
                f"skipped {len(namespaces)} namespace(s) where you may not {what}: {shown}"
            )

    @property
    def offline_namespace(self) -> str:
        """The namespace without needing a cluster or even a kubeconfig (for --dry-run)."""
        from ant.errors import ConfigError

        try:
            return self.namespace
        except ConfigError:
            return "default"

    @cached_property
    def client(self) -> Client:
        from ant.kube import codec
        from ant.kube.client import Client
        from ant.kube.transport import Transport

        warning = codec.check_upb()
        if warning:
            self.terminal.warn(warning)
        if self.kubeconfig.cluster.insecure_skip_tls_verify:
            self.terminal.warn(
                f"not verifying the TLS certificate of {self.kubeconfig.cluster.server} "
                "(insecure-skip-tls-verify in the kubeconfig)"
            )
        # Whole requests without importing requests: a faster start (ant.kube.stdhttp).
        transport = Transport.from_kubeconfig(
            self.kubeconfig, deadline=self.deadline, stdlib_http=True
        )
        transport.on_denied = self.identity_cache.forget
        return Client(transport)

    @cached_property
    def identity_cache(self) -> IdentityCache:
        """This server and credential's remembered identity (ant.jobs.identity)."""
        from ant.jobs.identity import IdentityCache
        from ant.kube.config import credential_key, user_cache_dir

        key = credential_key(self.kubeconfig)
        return IdentityCache(user_cache_dir(self.env.vars) / "identity" / f"{key}.json")

    def identity(self) -> Identity:
        """Who the API server says the user is, for reads: remembered for a few minutes
        (writes that record the user ask ``ant.jobs.identity.whoami`` afresh)."""
        from ant.jobs.identity import whoami

        return whoami(self.client, self.identity_cache)

    def check_owner(
        self,
        job: str,
        statefulset: Any,
        *,
        force: bool,
        probe: Callable[[], object],
        me: Identity | None = None,
    ) -> Owner | None:
        """Before changing a job: refuse another user's unless ``force`` (ant.jobs.ownership);
        returns that other owner, to name in prompts. ``probe``: the command's first write
        as a dry run; ``me``: who asked, if known."""
        from ant.jobs import ownership

        meta = statefulset.metadata
        owner = ownership.owner_of(meta.labels, meta.annotations)
        me = me or self.identity()
        return ownership.check(
            job, self.namespace, owner, me, force=force, flag="--force", probe=probe
        )

    @cached_property
    def discovery(self) -> Discovery:
        """What the cluster serves, remembered in ~/.cache/ant/discovery.json."""
        from pathlib import Path

        from ant.kube.discovery import Discovery

        vars = self.env.vars
        base = vars.get("XDG_CACHE_HOME") or str(Path(vars.get("HOME") or Path.home()) / ".cache")
        return Discovery(self.client, Path(base) / "ant" / "discovery.json")

    @cached_property
    def reader(self) -> Client:
        """The client for reads: through the ant cache when one is configured (--cache,
        ANT_CACHE_URL, the config file's for the context, or the context's ``ant.dev/cache``
        extension), else ``client``.

        Writes made with it go to the API server; when the cache cannot answer, reads
        fall back to the API server with one warning (docs/cache.md).
        """
        from ant.cache.client import reader_for

        return reader_for(
            self.kubeconfig,
            self.cache_url,
            self.env.vars,
            self.client,
            on_fallback=self.terminal.warn,
            on_skip=self.terminal.debug,
        )

    @cached_property
    def api(self) -> Api:
        """The Python API (ant.api) over this command's connections: the layer commands call."""
        from ant.api import Client as Api

        return Api.over(
            self.client,
            self.namespace,
            reader=self.reader,
            identity=self.identity,
            named=self.named_namespaces,
        )

    def warn_without_controller(self) -> None:
        """Say once, on stderr, when no ant controller runs: jobs then never end."""
        from ant.controller.lease import LEASE_NAME, LEASE_NAMESPACE, controller_state

        if controller_state(self.client).running is False:
            self.terminal.warn(
                f"no ant controller holds the lease {LEASE_NAMESPACE}/{LEASE_NAME}: jobs will "
                "not become Succeeded or Failed on their own (docs/controller.md)"
            )

    def record_write(self, *resource_versions: str) -> None:
        """After a write: the next reads through the cache wait until it has seen it
        (the newest of ``resource_versions``)."""
        from ant.cache.client import last_write_file, newest, record_write, settings, write_key

        if settings(self.kubeconfig, self.cache_url, self.env.vars) is None:
            return
        resource_version = newest(resource_versions)
        try:
            record_write(
                last_write_file(self.env.vars), write_key(self.kubeconfig), resource_version
            )
        except OSError as e:
            self.terminal.debug(f"cannot record the last write for the ant cache: {e}")


def _deadline_seconds(text: str | None) -> float:
    if text is None:
        return DEFAULT_DEADLINE
    from ant.errors import ValidationError
    from ant.jobs.durations import parse_duration

    seconds = parse_duration(text, "--deadline")
    if seconds <= 0:
        raise ValidationError("--deadline", f"{text!r} is not a positive duration", hint="e.g. 2m")
    return seconds


class _TerminalHandler(logging.Handler):
    def __init__(self, terminal: Terminal) -> None:
        super().__init__()
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        self.terminal.info(f"{record.name}: {record.getMessage()}")


def _log_to(terminal: Terminal, level: int) -> None:
    logger = logging.getLogger("ant")
    logger.handlers[:] = [_TerminalHandler(terminal)]
    logger.setLevel(level)
