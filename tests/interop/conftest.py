"""A real OpenID provider we did not write: the npm package oidc-provider, pinned by
oidc_peer/package-lock.json, installed with `npm ci` and run with Node on loopback.

Without Node or npm, or when `npm ci` fails, the interop tests skip on a developer's machine
and fail in CI (see `unavailable`).
"""

from __future__ import annotations

import hashlib
import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_CLIENT_ORIGIN, unavailable

PEER_DIR = Path(__file__).resolve().parent / "oidc_peer"
LOCKFILE = PEER_DIR / "package-lock.json"
# Written into node_modules after a successful `npm ci`; `npm ci` removes node_modules first,
# so a stale or half-done install never carries a matching stamp.
STAMP = PEER_DIR / "node_modules" / ".loyalink-lock.sha256"
READY_PREFIX = "oidc-peer ready "
NPM_CI_TIMEOUT_SECONDS = 300
READY_TIMEOUT_SECONDS = 30
REDIRECT_URI = f"{TEST_CLIENT_ORIGIN}/auth/google/callback"


@dataclass(frozen=True)
class OIDCPeer:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str


def _lock_digest() -> str:
    return hashlib.sha256(LOCKFILE.read_bytes()).hexdigest()


def _install() -> None:
    """`npm ci` when node_modules is missing or was installed from another lockfile."""
    digest = _lock_digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed: the OpenID interop peer cannot be installed")
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=PEER_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        unavailable(f"npm ci for the OpenID interop peer took over {NPM_CI_TIMEOUT_SECONDS} s")
    if result.returncode != 0:
        unavailable(f"npm ci for the OpenID interop peer failed:\n{result.stderr[-2000:]}")
    STAMP.write_text(digest + "\n")


def _read_lines(stream, lines: queue.Queue) -> None:
    # Keeps draining stdout for the life of the process, so the peer never blocks on a pipe.
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.fixture(scope="session")
def oidc_peer() -> Iterator[OIDCPeer]:
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js is not installed: the OpenID interop peer cannot run")
    _install()
    client_id = "loyalink-interop"
    client_secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": client_secret,
        "OIDC_REDIRECT_URI": REDIRECT_URI,
        "NODE_ENV": "test",
    }
    with tempfile.TemporaryFile(mode="w+") as stderr:
        # Port 0: the peer binds a free port itself and names it in its ready line (no race).
        process = subprocess.Popen(
            [node, "server.mjs", "0"],
            cwd=PEER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
            issuer = _wait_until_ready(lines, stderr)
            yield OIDCPeer(issuer, client_id, client_secret, REDIRECT_URI)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_ready(lines: queue.Queue, stderr) -> str:
    def failure(why: str) -> str:
        stderr.seek(0)
        return f"the OpenID interop peer {why}:\n{stderr.read()[-2000:]}"

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    try:
        while True:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                pytest.fail(failure("exited before it was ready"), pytrace=False)
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX) :].strip()
    except queue.Empty:
        pytest.fail(failure(f"was not ready within {READY_TIMEOUT_SECONDS} s"), pytrace=False)
