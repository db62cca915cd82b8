"""Run the sandbox Apple ID standalone: ``python -m sandbox --port 5001``."""

from __future__ import annotations

import argparse

from sandbox import create_sandbox_app
from sandbox.state import APPLE_ISSUER


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve the sandbox (threaded)."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--issuer", default=APPLE_ISSUER, help="iss of id_tokens, aud of secrets")
    args = parser.parse_args(argv)
    create_sandbox_app(issuer=args.issuer).run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
