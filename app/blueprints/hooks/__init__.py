from flask import Blueprint

bp = Blueprint("hooks", __name__)

from app.blueprints.hooks import telegram, views, vk  # noqa: E402, F401
