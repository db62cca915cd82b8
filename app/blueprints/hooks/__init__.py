from flask import Blueprint

bp = Blueprint("hooks", __name__)

from app.blueprints.hooks import views  # noqa: E402, F401
