"""The demo: the portal with the sandbox mounted at /sandbox, on embedded defaults.

`make demo` runs `flask --app demo:create_demo_app run`. On first use this writes
instance/demo.env with fresh demo secrets and a demo Apple key; the sandbox is told the key's
public half, exactly as a real Apple developer account would be. The product (app/) never
imports the sandbox: only this does.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path

import click
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dotenv import dotenv_values
from flask import Flask
from flask.cli import with_appcontext
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app import create_app
from sandbox import create_sandbox_app
from sandbox.portal import portal_settings, register_portal

INSTANCE = Path(__file__).resolve().parent / "instance"
DEMO_ENV = INSTANCE / "demo.env"
log = logging.getLogger("demo")
DEMO_KEY = INSTANCE / "demo-apple-key.p8"
DEMO_PUBLIC_URL = os.environ.get("DEMO_PUBLIC_URL", "http://127.0.0.1:5000")
SANDBOX_PREFIX = "/sandbox"
DEMO_MARKETER = "marketer@demo.example.com"
DEMO_VK_GROUP = 1
DEMO_VK_TOKEN = "demo-vk-service-token"  # noqa: S105 - the sandbox's own token
DEMO_OK_GROUP = 53038939046008
DEMO_OK_TOKEN = "demo-ok-group-token"  # noqa: S105 - the sandbox's own token
# The demo community's Callback API settings, as VK's community settings page would show them.
DEMO_VK_CALLBACK_SECRET = "demoCallbackSecret1"  # noqa: S105 - the sandbox's own
DEMO_VK_CALLBACK_CONFIRMATION = "d3m0c0nf"


def ensure_demo_env() -> dict[str, str]:
    """Create the demo secrets once; later runs reuse them so sessions and tokens survive."""
    INSTANCE.mkdir(exist_ok=True)
    if not DEMO_KEY.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        DEMO_KEY.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        DEMO_KEY.chmod(0o600)
    apple_url = f"{DEMO_PUBLIC_URL}{SANDBOX_PREFIX}/apple"
    defaults = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_URL": DEMO_PUBLIC_URL,
        "APPLE_CLIENT_ID": "test.loyalink.demo",
        "APPLE_TEAM_ID": "DEMOTEAM01",
        "APPLE_KEY_ID": "DEMOKEY001",
        "APPLE_PRIVATE_KEY_FILE": str(DEMO_KEY),
        "APPLE_BASE_URL": apple_url,
        "APPLE_ISSUER": apple_url,
        **portal_settings(f"{DEMO_PUBLIC_URL}{SANDBOX_PREFIX}"),
        "VK_API_URL": f"{DEMO_PUBLIC_URL}{SANDBOX_PREFIX}/vk-api",
        "SCHEDULER_ENABLED": "true",
        "SCHEDULER_TICK_SECONDS": "1",
    }
    # Settings added by a newer version join an existing demo.env; kept ones stay as they are.
    existing = dotenv_values(DEMO_ENV) if DEMO_ENV.exists() else {}
    missing = {key: value for key, value in defaults.items() if key not in existing}
    if missing:
        with DEMO_ENV.open("a") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in missing.items())
        DEMO_ENV.chmod(0o600)
    values = {key: value for key, value in dotenv_values(DEMO_ENV).items() if value is not None}
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return values


def create_demo_app() -> Flask:
    """The portal in demo configuration, with the sandbox answering under /sandbox."""
    os.environ.setdefault("LOYALINK_ENV", "demo")
    ensure_demo_env()
    portal = create_app()
    config = portal.config
    sandbox = create_sandbox_app(issuer=config["APPLE_ISSUER"])
    private_key = serialization.load_pem_private_key(config["APPLE_PRIVATE_KEY"].encode(), None)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sandbox.extensions["sandbox"].register_apple_client(
        config["APPLE_CLIENT_ID"],
        team_id=config["APPLE_TEAM_ID"],
        key_id=config["APPLE_KEY_ID"],
        public_key_pem=public_pem.decode(),
        redirect_uris=[f"{config['PUBLIC_URL']}/auth/apple/callback"],
        notification_url=f"{config['PUBLIC_URL']}/hooks/apple",
    )
    register_portal(sandbox.extensions["sandbox"], [config["PUBLIC_URL"]])
    seed_vk_group(sandbox.extensions["sandbox"])
    seed_ok_group(sandbox.extensions["sandbox"])
    portal.wsgi_app = DispatcherMiddleware(portal.wsgi_app, {SANDBOX_PREFIX: sandbox})
    if serving():
        connect_vk_callbacks(sandbox.extensions["sandbox"], config["PUBLIC_URL"])
    portal.cli.add_command(demo_seed)
    return portal


def seed_vk_group(state) -> None:
    """The demo's VK community, rebuilt the same at every start so no change is invented."""
    vk = state.vk
    vk.register_token(DEMO_VK_TOKEN, kind="service")
    vk.create_group(DEMO_VK_GROUP, "Loyalink Club")
    for text in ("Welcome to the Loyalink Club!", "Our autumn offers", "Like this post for points"):
        vk.add_post(DEMO_VK_GROUP, text)
    for person in state.persons:
        vk.join(DEMO_VK_GROUP, person["networks"]["vk"]["user_id"])


def serving() -> bool:
    """True in `flask run` (not in `flask db upgrade`, `demo-seed` and the like)."""
    command = click.get_current_context(silent=True)
    return command is None or command.info_name == "run"


def connect_vk_callbacks(state, public_url: str) -> threading.Thread:
    """Point the sandbox community's Callback API at the portal once the portal answers: VK
    confirms a server by calling it, so the server must be up first."""

    def connect() -> None:
        for _ in range(100):
            try:
                state.vk.callbacks.set_server(
                    DEMO_VK_GROUP,
                    f"{public_url}/hooks/vk",
                    secret=DEMO_VK_CALLBACK_SECRET,
                    confirmation=DEMO_VK_CALLBACK_CONFIRMATION,
                )
                log.info("VK callbacks of the demo community go to %s/hooks/vk", public_url)
                return
            except ValueError:
                time.sleep(0.2)  # the server is not listening yet
        log.warning("the demo's VK callbacks could not be confirmed; polling still works")

    thread = threading.Thread(target=connect, name="demo-vk-callbacks", daemon=True)
    thread.start()
    return thread


def seed_ok_group(state) -> None:
    """The demo's Odnoklassniki group, rebuilt the same at every start like the VK one."""
    ok = state.ok
    ok.register_token(DEMO_OK_TOKEN)
    ok.create_group(DEMO_OK_GROUP, "Loyalink Club")
    for text in ("Welcome to the Loyalink Club!", "Give this topic a Klass for points"):
        ok.add_post(DEMO_OK_GROUP, text)
    for person in state.persons:
        ok.join(DEMO_OK_GROUP, int(person["networks"]["ok"]["uid"]))


@click.command("demo-seed")
@with_appcontext
def demo_seed() -> None:
    """Install the seed offers and the demo marketer (idempotent); say how to sign in."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import StaffUser, TrackedGroup
    from app.services.groups import add_group, set_callbacks
    from app.services.offers import install_seed_offers
    from app.services.staff import create_staff

    install_seed_offers()
    group = db.session.scalar(select(TrackedGroup).where(TrackedGroup.network == "vk"))
    if group is None:
        group = add_group(
            "vk", str(DEMO_VK_GROUP), "Loyalink Club", DEMO_VK_TOKEN, interval_seconds=10
        )
    if db.session.scalar(select(TrackedGroup).where(TrackedGroup.network == "ok")) is None:
        add_group("ok", str(DEMO_OK_GROUP), "Loyalink Club", DEMO_OK_TOKEN, interval_seconds=10)
    if group.callback_confirmation is None:
        set_callbacks(
            group.id,
            secret=DEMO_VK_CALLBACK_SECRET,
            confirmation=DEMO_VK_CALLBACK_CONFIRMATION,
        )
    password = os.environ.get("DEMO_MARKETER_PASSWORD", "demo-marketer-password")
    if db.session.scalar(select(StaffUser).where(StaffUser.email == DEMO_MARKETER)) is None:
        create_staff(DEMO_MARKETER, password, "marketer")
    click.echo(
        f"\n  Portal:   {DEMO_PUBLIC_URL}/\n"
        f"  Sandbox:  {DEMO_PUBLIC_URL}{SANDBOX_PREFIX}/ (Apple ID persons, notifications)\n"
        f"  Staff:    {DEMO_PUBLIC_URL}/staff/ as {DEMO_MARKETER} / {password}\n"
        f"  VK group: act as a person at {DEMO_PUBLIC_URL}{SANDBOX_PREFIX}/vk-api/tester;\n"
        f"            the like reaches the portal at once through VK's Callback API, and\n"
        f"            the scheduler reconciles every 10 s (see {DEMO_PUBLIC_URL}/ops/runs)\n"
        f"  OK group: act at {DEMO_PUBLIC_URL}{SANDBOX_PREFIX}/ok-api/tester; read every 10 s\n"
    )
