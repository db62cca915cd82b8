"""Command-line tools: `flask staff create`, `flask tokens rotate`."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.models import Handoff, LinkedProfile, StaffRole
from app.models.types import utcnow
from app.rules import OfferInvalid
from app.services.crypto import rotate
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


def register(app: Flask) -> None:
    app.cli.add_command(staff_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(points_cli)
    app.cli.add_command(offers_cli)
