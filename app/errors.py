"""Friendly error pages; JSON for the machine-facing hooks."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

TITLES = {
    400: "That request could not be handled",
    403: "You cannot open this page",
    404: "Page not found",
    405: "That action is not allowed here",
    429: "Too many attempts",
    500: "Something went wrong on our side",
}

DEFAULT_MESSAGES = {
    400: "The request was incomplete or malformed. Nothing was changed.",
    403: "Your account does not have access to this page.",
    404: "The page you asked for does not exist or has moved.",
    405: "This address does not accept that kind of request.",
    429: "Please wait a little and try again.",
    500: "The error has been logged. Nothing was changed; please try again in a moment.",
}


def render_error(status: int, message: str | None = None):
    message = message or DEFAULT_MESSAGES.get(status, "")
    if request.blueprint == "hooks" or request.accept_mimetypes.best == "application/json":
        return jsonify(error=message), status
    title = TITLES.get(status, "Error")
    return render_template("errors/error.html", status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(
            400,
            "The form was sent without its security token or the token has expired. "
            "Nothing was changed: reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        custom = error.description if error.description != type(error).description else None
        return render_error(code, custom)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500)
