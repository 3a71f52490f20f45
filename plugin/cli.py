"""The `okaeri` command. Every expected failure ends in one line on stderr and a non-zero exit.

Each command imports what it runs inside its own body: `okaeri --help` and the small commands
start without loading the web app, the workers, the recommender and every driver (no cycle is
being avoided; plugin/ imports one way, as the import-linter contracts check)."""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import or_, select
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from plugin.platforms import check_platform_settings
from plugin.settings import ConfigError, Settings, ensure_secret_key, load_settings

__all__ = ["main", "cli"]


class CliError(click.ClickException):
    """One-line failure: printed as `okaeri: <message>`, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"okaeri: {self.format_message()}", err=True)


def _settings(require_secret: bool = True) -> Settings:
    try:
        settings = load_settings()
        check_platform_settings(settings)
    except ConfigError as exc:
        raise CliError(f"invalid configuration: {exc}") from None
    if require_secret and not settings.secret_key:
        raise CliError("invalid configuration: OKAERI_SECRET_KEY: must be set (only `okaeri demo` generates one)")
    return settings


def _runtime(settings: Settings) -> Any:
    from plugin.runtime import build_runtime

    return build_runtime(settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (this process and those it starts).")
def cli(verbose: bool) -> None:
    """Okaeri: repeat-customer scenarios for ColorMe Shop and Shopify."""
    from plugin.logs import configure_logging

    try:
        settings = load_settings()
        level, log_format = logging.getLevelName(settings.log_level), settings.log_format
    except ConfigError:  # the command itself reports the bad variable
        level, log_format = logging.WARNING, "text"
    configure_logging(logging.INFO if verbose else level, log_format)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--seed", default=42, show_default=True, help="Seed of the generated sandbox shop.")
@click.option("--platform", default=None, help="The sandbox platform to install into (one of the demo's sandboxes; "
              "its first when not given).")
def demo(host: str, port: int, seed: int, platform: str | None) -> None:
    """Web + worker + scheduler + sandbox shop + mail catcher, on SQLite and the in-process broker."""
    from plugin.demo.stack import PLATFORMS, DemoError, run_demo

    settings = _settings(require_secret=False)
    if settings.broker_url != "memory://":
        settings = settings.model_copy(update={"broker_url": "memory://"})
    try:
        run_demo(ensure_secret_key(settings), host, port, seed, platform=platform or PLATFORMS[0])
    except DemoError as exc:
        raise CliError(str(exc)) from None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Web processes sharing the port (one per core); more than one needs a shared broker.")
def serve(host: str, port: int, workers: int) -> None:
    """The web app. With the in-process broker its worker threads run here too."""
    import uvicorn

    from plugin.demo.stack import port_in_use
    from plugin.jobs.broker import is_in_process
    from plugin.jobs.worker import start_worker
    from plugin.web.app import create_app

    if port_in_use(host, port):
        raise CliError(f"port {port} on {host} is already in use")
    from plugin.install.lifecycle import refresh_all_scripts

    settings = _settings()
    runtime = _runtime(settings)
    # Access lines only when asked for (-v, OKAERI_LOG_LEVEL=INFO): a proxy in front logs requests.
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info",
                               "access_log": logging.getLogger().isEnabledFor(logging.INFO),
                               "timeout_graceful_shutdown": int(settings.shutdown_timeout)}  # SIGTERM drains open requests
    if workers > 1:
        if is_in_process(runtime.broker):
            runtime.close()
            raise CliError("--workers above 1 needs a shared broker (BROKER_URL redis://… or amqp://…): "
                           "the in-process queue lives in one process")
        threading.Thread(target=refresh_all_scripts, args=(runtime,), daemon=True).start()
        from plugin.web.serving import FACTORY

        # each web process reads its level from the environment: this one's, -v included
        os.environ["OKAERI_LOG_LEVEL"] = logging.getLevelName(logging.getLogger().getEffectiveLevel())

        try:
            uvicorn.run(FACTORY, factory=True, workers=workers, **options)  # each process builds its own runtime
        finally:
            runtime.close()
        return
    worker = start_worker(runtime) if is_in_process(runtime.broker) else None
    threading.Thread(target=refresh_all_scripts, args=(runtime,), daemon=True).start()  # a new script: new SRI
    app = create_app(runtime)
    _settle_heap()
    try:
        uvicorn.run(app, **options)
    finally:
        if worker:
            worker.stop(timeout=int(runtime.settings.shutdown_timeout * 1000))
        runtime.close()


HEALTH_PORT = click.option(
    "--health-port", type=click.IntRange(0, 65535), default=None,
    help="Serve /healthz and /readyz on this port (127.0.0.1, or --health-host) for probes.")
HEALTH_HOST = click.option("--health-host", default="127.0.0.1", show_default=True)


@cli.command()
@click.option("--threads", type=click.IntRange(1, 64), default=None, help="Worker threads (OKAERI_WORKER_THREADS).")
@HEALTH_PORT
@HEALTH_HOST
def worker(threads: int | None, health_port: int | None, health_host: str) -> None:
    """Consume sync, scenario and delivery jobs from BROKER_URL until interrupted."""
    from plugin.jobs.broker import is_in_process
    from plugin.jobs.worker import start_worker

    runtime = _runtime(_settings())
    if is_in_process(runtime.broker):
        raise CliError("BROKER_URL is memory://: a separate worker cannot see the web process's queue; "
                       "set BROKER_URL to redis:// or amqp://")

    def start() -> Callable[[], Any]:
        consumer = start_worker(runtime, threads)
        probe = _health_server(runtime, health_host, health_port,
                               lambda: any(thread.is_alive() for thread in consumer.workers), backlog=False)
        _settle_heap()
        def stop() -> None:
            if probe:
                probe.stop()
            # SIGTERM: stop fetching, let each thread finish the batch it holds (bounded), then exit.
            consumer.stop(timeout=int(runtime.settings.shutdown_timeout * 1000))

        return stop

    _run_until_interrupt(start, runtime)


@cli.command()
@click.option("--interval", default=60.0, show_default=True, type=click.FloatRange(1, 3600))
@HEALTH_PORT
@HEALTH_HOST
def scheduler(interval: float, health_port: int | None, health_host: str) -> None:
    """Enqueue periodic ticks; several may run, only the lease holder enqueues."""
    from plugin.jobs.scheduler import Scheduler

    runtime = _runtime(_settings())
    sched = Scheduler(runtime, interval)
    thread = threading.Thread(target=sched.run_forever, daemon=True)

    def start() -> Callable[[], Any]:
        thread.start()
        probe = _health_server(runtime, health_host, health_port, thread.is_alive)
        _settle_heap()
        def stop() -> None:
            if probe:
                probe.stop()
            sched.stop()  # gives the lease back: a standby scheduler takes over at once

        return stop

    _run_until_interrupt(start, runtime)


def _settle_heap() -> None:
    """After a process's start-up (plugin.runtime.settle_heap)."""
    from plugin.runtime import settle_heap

    settle_heap()


def _health_server(runtime: Any, host: str, port: int | None, alive: Callable[[], bool], *,
                   backlog: bool = True) -> Any:
    """The probes and metrics of a worker (its own counters) or scheduler (with the outbox backlog)."""
    if port is None:
        return None
    from plugin.jobs.exposition import metrics_page
    from plugin.jobs.health import HealthServer, readiness

    try:
        server = HealthServer(host, port, lambda: readiness(runtime.engine, runtime.broker), alive,
                              lambda: metrics_page(runtime, backlog=backlog)).start()
    except OSError as exc:
        raise CliError(f"--health-port {port}: {exc.strerror or exc}") from None
    click.echo(f"health: http://{host}:{server.port}/healthz, /readyz and /metrics", err=True)
    return server


@cli.command()
@click.option("--url", default="", help="Ask a running process's /readyz instead (e.g. http://127.0.0.1:9101).")
def status(url: str) -> None:
    """Is this deployment ready? Database, migrations and broker, one line each; exit 1 if not."""
    from plugin.jobs.health import Check, is_ready, readiness

    if url:
        import httpx

        try:
            answer = httpx.get(url.rstrip("/") + "/readyz", timeout=10).json()
            checks = [Check(**check) for check in answer["checks"]]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise CliError(f"{url}: no readiness answer ({type(exc).__name__})") from None
    else:
        runtime = _runtime(_settings())
        try:
            checks = readiness(runtime.engine, runtime.broker)
        finally:
            runtime.close()
    for check in checks:
        click.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name:<10} {check.detail}")
    if not is_ready(checks):
        raise CliError("not ready: " + ", ".join(check.name for check in checks if not check.ok))


def _run_until_interrupt(start: Callable[[], Callable[[], Any]], runtime: Any) -> None:
    """Run until Ctrl-C or SIGTERM (what `docker stop`, systemd and Kubernetes send), then stop cleanly."""
    import signal

    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    stop = start()
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop()
        runtime.close()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 as the bounce domain's MX).")
@click.option("--port", default=2525, show_default=True, type=click.IntRange(1, 65535))
@HEALTH_PORT
@HEALTH_HOST
def bounces(host: str, port: int, health_port: int | None, health_host: str) -> None:
    """Receive bounces (DSN) and complaints (ARF) over SMTP for OKAERI_BOUNCE_DOMAIN; suppress as they say."""
    from plugin.channels.bounces.inbound import Inbox
    from plugin.channels.bounces.receiver import BounceReceiver
    from plugin.channels.verp import ReturnPath
    from plugin.demo.stack import port_in_use

    settings = _settings()
    if not settings.bounce_domain:
        raise CliError("invalid configuration: OKAERI_BOUNCE_DOMAIN: must be set (the domain of the VERP return path)")
    if port_in_use(host, port):
        raise CliError(f"port {port} on {host} is already in use")
    runtime = _runtime(settings)
    inbox = Inbox(runtime.sessions, ReturnPath(runtime.signer, settings.bounce_domain), runtime.clock)

    def start() -> Callable[[], Any]:
        receiver = BounceReceiver(inbox, host, port).start()
        probe = _health_server(runtime, health_host, health_port, receiver.alive, backlog=False)
        click.echo(f"receiving reports for @{settings.bounce_domain} on {host}:{port}")

        def stop() -> None:
            if probe:
                probe.stop()
            receiver.stop()

        return stop

    _run_until_interrupt(start, runtime)


@cli.command("dkim-record")
def dkim_record() -> None:
    """Print the DNS TXT record of the OKAERI_DKIM_* key, to publish before mail is signed with it."""
    from plugin.channels.dkim import DkimSigner

    settings = _settings(require_secret=False)
    signer = DkimSigner.from_settings(settings)
    if signer is None:
        raise CliError("invalid configuration: OKAERI_DKIM_DOMAIN: must be set (with OKAERI_DKIM_SELECTOR and the key)")
    click.echo(signer.dns_record())
    if not signer.aligned_with(settings.mail_from):
        click.echo(f"warning: OKAERI_MAIL_FROM {settings.mail_from} is not at {signer.domain}: DMARC will not see "
                   "this signature as aligned with the From address", err=True)


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from plugin.storage.db import make_engine
    from plugin.storage.db import migrate as run_migrations

    settings = _settings(require_secret=False)
    run_migrations(make_engine(settings.effective_database_url))
    click.echo("database is up to date")


@cli.command()
@click.argument("shop")
@click.option("--full", is_flag=True, help="Re-read everything instead of changes since the last sync.")
def sync(shop: str, full: bool) -> None:
    """Sync SHOP (its id or platform id, e.g. PA00000001) now, with a progress bar."""
    from plugin.install.lifecycle import sync_installed_shop
    from plugin.sync.run import UnknownShop

    runtime = _runtime(_settings())
    found = _shop_named(runtime, shop)
    bars: dict[str, Any] = {}

    def progress(resource: str, done: int, total: int | None) -> None:
        if resource not in bars:
            for bar in bars.values():
                bar.render_finish()
            bars[resource] = click.progressbar(length=total or 0, label=f"{resource:<9}", show_pos=True)
        bar = bars[resource]
        bar.update(done - bar.pos) if total else bar.update(0, f"{done}")

    try:
        counts = sync_installed_shop(runtime, found.id, full=full, progress=progress)
    except UnknownShop as exc:
        raise CliError(str(exc)) from None
    finally:
        for bar in bars.values():
            bar.render_finish()
        runtime.close()
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


def _shop_named(runtime: Any, shop: str) -> Any:
    """The install SHOP names (its id, platform id or domain), or a CliError."""
    from plugin.storage.models import Shop

    with runtime.sessions() as session:
        by_id = col(Shop.id) == (int(shop) if shop.isdigit() else -1)
        found = session.execute(
            select(Shop).where(or_(col(Shop.external_id) == shop, col(Shop.domain) == shop, by_id))).scalars().first()
    if found is None:
        runtime.close()
        raise CliError(f"unknown shop {shop!r} (see `okaeri shops`)")
    return found


@cli.command()
@click.argument("shop")
def reconcile(shop: str) -> None:
    """Compare SHOP's counts with its platform's now and repair drift (the scheduler does it daily)."""
    from plugin.sync.reconcile import reconcile_shop
    from plugin.sync.run import UnknownShop

    runtime = _runtime(_settings())
    found = _shop_named(runtime, shop)
    try:
        findings = reconcile_shop(runtime, found.id)
    except UnknownShop as exc:
        raise CliError(str(exc)) from None
    finally:
        runtime.close()
    for f in findings:
        state = "ok" if f.agrees else f"repaired, now {f.local_after}"
        click.echo(f"{f.resource:<9} platform={f.platform} okaeri={f.local} {state}")


@cli.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-encrypt stored platform tokens under the current OKAERI_SECRET_KEY (after a rotation).

    Keep the old key in OKAERI_PREVIOUS_SECRET_KEYS while links signed with it may still be clicked."""
    from plugin.storage.reencrypt import reencrypt_all

    runtime = _runtime(_settings())
    done = reencrypt_all(runtime.sessions, runtime.cipher)
    click.echo(f"re-encrypted {done.rewritten} stored secret(s) under the current key")
    if done.unreadable:
        raise CliError(f"{done.unreadable} stored secret(s) could not be decrypted with any configured key; "
                       "add the key they were encrypted with to OKAERI_PREVIOUS_SECRET_KEYS")


@cli.command()
def shops() -> None:
    """List installs and their state."""
    from plugin.storage.models import Shop

    runtime = _runtime(_settings())
    with runtime.sessions() as session:
        rows = session.execute(select(Shop).order_by(col(Shop.id))).scalars().all()
    runtime.close()
    if not rows:
        click.echo("no shops installed")
    for s in rows:
        click.echo(f"{s.id:>4}  {s.platform:<8} {s.external_id:<24} {s.state:<11} {s.name}  {s.state_message}")


@cli.group()
def recommender() -> None:
    """Recommendation models: offline evaluation."""


@recommender.command("evaluate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--customer", required=True, help="Column with the customer id.")
@click.option("--item", required=True, help="Column with the item id.")
@click.option("--time", "when", required=True, help="Column with the purchase date or time.")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--dayfirst", is_flag=True, help="Read 01-02-2015 as 1 February.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def evaluate_command(file: Path, customer: str, item: str, when: str, k: int, dayfirst: bool, as_json: bool) -> None:
    """Recall@k, NDCG@k, coverage and train time of every model on a purchase-lines CSV."""
    import json

    from recommender.evaluate import EvaluationError, as_dicts, evaluate, load_csv

    try:
        results, timing, chosen = evaluate(load_csv(file, customer, item, when, dayfirst), k)
    except EvaluationError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(as_dicts(results)))
        return
    click.echo(f"{'model':<12} {'recall@' + str(k):>10} {'ndcg@' + str(k):>10} {'coverage':>9} {'train s':>8} "
               f"{'validation':>10}  grid point")
    for r in results:
        click.echo(f"{r.model:<12} {r.recall:>10.4f} {r.ndcg:>10.4f} {r.coverage:>9.3f} {r.train_seconds:>8.2f} "
                   f"{r.validation_recall:>10.4f}  {r.params}")
    click.echo(f"auto serves: {chosen}")
    click.echo(f"repurchase timing: {timing.hits} of {timing.rebought} re-bought items were flagged due "
               f"({timing.share_flagged:.1%}); {timing.flagged} flagged in all (precision {timing.precision:.1%})")


def main() -> None:
    """Entry point: clear one-line errors for the failures a user can cause."""
    from connectors.errors import ConnectorError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OperationalError as exc:
        click.echo(f"okaeri: cannot use the database: {str(exc.orig).strip().splitlines()[0]}", err=True)
        sys.exit(1)
    except ConnectorError as exc:
        click.echo(f"okaeri: {exc.platform or 'platform'} call failed: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
