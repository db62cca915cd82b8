"""The sandbox Telegram Bot API: a channel, its discussion group and the updates a bot gets.

``model`` holds the data and the webhook delivery (``SandboxState.telegram``), ``api`` answers
the Bot API methods and the control endpoints, ``tester`` is the page where a person joins,
reacts and comments as a sandbox user.
"""

from __future__ import annotations

from sandbox.telegram_bot.model import TelegramBotState

__all__ = ["TelegramBotState"]
