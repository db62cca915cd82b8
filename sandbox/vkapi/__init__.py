"""The sandbox VK API (version 5.199): the data methods the portal's collector polls.

``model`` holds the data (``SandboxState.vk``), ``generator`` builds and mutates big groups,
``methods`` answers each VK method, ``script`` parses ``execute`` code, ``dispatch`` runs a
request (tokens, rate limit, faults), ``api`` and ``tester`` are the Flask blueprints.
"""

from __future__ import annotations

from sandbox.vkapi.model import API_VERSION, VkApiState

__all__ = ["API_VERSION", "VkApiState"]
