from flask import render_template

from app.blueprints.main import bp


@bp.get("/")
def index():
    return render_template("main/index.html")


@bp.get("/terms")
def terms():
    return render_template("main/terms.html")


@bp.get("/healthz")
def health():
    return {"status": "ok"}
