"""Command-line tools: `flask staff create`, `flask tokens rotate`."""

from __future__ import annotations

import json
import time

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from app.collect.base import CollectorError
from app.extensions import db
from app.models import Handoff, LinkedProfile, StaffRole, TrackedGroup
from app.models.types import utcnow
from app.rules import OfferInvalid
from app.services.crypto import rotate
from app.services.groups import (
    GroupError,
    add_group,
    clear_callbacks,
    groups_with_last_success,
    remove_group,
    set_callbacks,
    start_telegram_webhook,
    stop_telegram_webhook,
)
from app.services.ledger import expire_points
from app.services.offers import install_seed_offers, save_offer
from app.services.staff import StaffError, create_staff

staff_cli = AppGroup("staff", help="Manage staff accounts (marketers and administrators).")


@staff_cli.command("create")
@click.option("--email", required=True, help="The staff member's email, used to sign in.")
@click.option(
    "--role",
    type=click.Choice([role.value for role in StaffRole]),
    default=StaffRole.MARKETER.value,
    show_default=True,
)
@click.password_option(
    "--password", envvar="STAFF_PASSWORD", help="At least 12 characters; prompted if not given."
)
def create_staff_command(email: str, role: str, password: str) -> None:
    """Create a staff account."""
    try:
        user = create_staff(email, password, role)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.role.value} {user.email}.")


tokens_cli = AppGroup("tokens", help="Encrypted tokens at rest.")


@tokens_cli.command("rotate")
def rotate_tokens_command() -> None:
    """Re-encrypt every stored token with the first key of TOKEN_ENCRYPTION_KEYS."""
    count = 0
    for profile in db.session.scalars(
        select(LinkedProfile).where(LinkedProfile.token_encrypted.is_not(None))
    ):
        profile.token_encrypted = rotate(profile.token_encrypted)
        count += 1
    for handoff in db.session.scalars(select(Handoff)):
        handoff.payload_encrypted = rotate(handoff.payload_encrypted)
        count += 1
    for group in db.session.scalars(select(TrackedGroup)):
        group.token_encrypted = rotate(group.token_encrypted)
        count += 1
    db.session.commit()
    click.echo(f"Re-encrypted {count} values with the newest key; older keys can now be removed.")


points_cli = AppGroup("points", help="The points ledger.")


@points_cli.command("expire")
def expire_points_command() -> None:
    """Burn what is left of every accrual past its expiry (run it daily, or let the scheduler)."""
    written = expire_points(utcnow())
    click.echo(f"Wrote {written} expiry entries.")


offers_cli = AppGroup("offers", help="Offers.")


@offers_cli.command("install-seed")
def install_seed_command() -> None:
    """Store the seed system's six example offers (those not stored yet)."""
    installed = install_seed_offers()
    click.echo(f"Installed {len(installed)} offers: {', '.join(o.id for o in installed) or '-'}")


@offers_cli.command("load")
@click.argument("path", type=click.File("r"))
def load_offer_command(path) -> None:
    """Store an offer from a JSON file as its next version."""
    try:
        data = json.load(path)
    except ValueError as exc:
        raise click.ClickException(f"{path.name} is not valid JSON: {exc}") from None
    try:
        offer = save_offer(data)
    except OfferInvalid as exc:
        raise click.ClickException(f"offer refused: {exc}") from None
    click.echo(f"Stored offer {offer.id} version {offer.version}.")


groups_cli = AppGroup("groups", help="Tracked groups the collector reads.")


@groups_cli.command("add")
@click.option("--network", default="vk", show_default=True)
@click.option("--group-id", required=True, help="The community's numeric id.")
@click.option("--name", default="", help="A name for the staff pages.")
@click.option("--token", envvar="GROUP_TOKEN", required=True, help="A user or service token.")
@click.option("--posts", "posts_to_scan", default=20, show_default=True, type=int)
@click.option("--interval", "interval_seconds", default=300, show_default=True, type=int)
def add_group_command(network, group_id, name, token, posts_to_scan, interval_seconds) -> None:
    """Track a group."""
    try:
        group = add_group(
            network,
            group_id,
            name,
            token,
            posts_to_scan=posts_to_scan,
            interval_seconds=interval_seconds,
        )
    except GroupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Tracking {group.network} group {group.group_id} as #{group.id}.")


@groups_cli.command("callbacks")
@click.argument("tracked_group_id", type=int)
@click.option("--secret", envvar="VK_CALLBACK_SECRET", help="The secret key set in VK.")
@click.option("--confirmation", help="The string VK's Callback API settings ask to return.")
@click.option("--off", is_flag=True, help="Refuse this group's callbacks from now on.")
def callbacks_command(tracked_group_id, secret, confirmation, off) -> None:
    """Accept VK Callback API events for a tracked VK group at /hooks/vk/<id>."""
    try:
        if off:
            clear_callbacks(tracked_group_id)
            click.echo(f"Callbacks of group #{tracked_group_id} are refused from now on.")
            return
        if not secret or not confirmation:
            raise click.UsageError("give --secret and --confirmation (or --off)")
        group = set_callbacks(tracked_group_id, secret=secret, confirmation=confirmation)
    except GroupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"VK group {group.group_id} callbacks accepted at /hooks/vk/{group.id}.")


@groups_cli.command("webhook")
@click.argument("tracked_group_id", type=int)
@click.option("--url", help="The portal's public URL of /hooks/telegram/<id>, https.")
@click.option("--off", is_flag=True, help="Stop the webhook; scheduled polling reads again.")
def webhook_command(tracked_group_id, url, off) -> None:
    """Have Telegram push a tracked channel's updates to the portal instead of polling."""
    try:
        if off:
            stop_telegram_webhook(tracked_group_id)
            click.echo(f"Telegram webhook of group #{tracked_group_id} removed; polling resumes.")
            return
        if not url:
            raise click.UsageError("give --url (or --off)")
        start_telegram_webhook(tracked_group_id, url)
    except (GroupError, CollectorError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Telegram pushes group #{tracked_group_id}'s updates to {url}.")


@groups_cli.command("list")
def list_groups_command() -> None:
    """List tracked groups and their last successful run."""
    for group, run in groups_with_last_success():
        last = run.finished_at.isoformat(timespec="seconds") if run and run.finished_at else "never"
        pushed = ""
        if group.callback_secret_encrypted is not None:
            pushed = "; webhook on" if group.network == "telegram" else "; callbacks on"
        click.echo(
            f"#{group.id} {group.network} {group.group_id} {group.name!r} "
            f"every {group.interval_seconds}s, {group.posts_to_scan} posts; last success: {last}"
            f"{pushed}"
        )


@groups_cli.command("remove")
@click.argument("tracked_group_id", type=int)
def remove_group_command(tracked_group_id: int) -> None:
    """Stop tracking a group (its snapshot goes with it)."""
    try:
        remove_group(tracked_group_id)
    except GroupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Removed #{tracked_group_id}.")


collect_cli = AppGroup("collect", help="Collection from the networks.")


@collect_cli.command("run")
@click.option("--group", "group_ids", type=int, multiple=True, help="Only this tracked group.")
def collect_run_command(group_ids) -> None:
    """Run a collection cycle now (all groups, or the ones given)."""
    from app.collect.engine import collect_group

    ids = list(group_ids) or [group.id for group, _ in groups_with_last_success()]
    for group_id in ids:
        try:
            run = collect_group(group_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        if run is None:
            click.echo(f"#{group_id}: already being collected by another process")
            continue
        click.echo(
            f"#{group_id}: {run.status}, {run.requests} requests, {run.items_read} items, "
            f"{run.events_found} events, {run.errors} errors"
        )


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduler in the foreground, as a process of its own."""
    from flask import current_app

    from app.collect.scheduler import tick

    app = current_app._get_current_object()
    click.echo("Scheduler running; Ctrl+C stops it.")
    while True:
        tick(app)
        time.sleep(app.config["SCHEDULER_TICK_SECONDS"])


def register(app: Flask) -> None:
    app.cli.add_command(groups_cli)
    app.cli.add_command(collect_cli)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(staff_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(points_cli)
    app.cli.add_command(offers_cli)
