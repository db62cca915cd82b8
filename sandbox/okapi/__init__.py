"""The sandbox Odnoklassniki API: the data methods the portal's collector polls.

``model`` holds the data (``SandboxState.ok``) and ``ACCURACY_PROFILE``, ``methods`` answers
each OK method, ``dispatch`` runs a request (token, signature, rate limit, faults, quotas),
``api`` (control endpoints) and ``tester`` (a page to act as a person) are Flask blueprints.
The data methods answer at /ok-api/fb.do, beside users.getCurrentUser (sandbox.networks.ok).
"""

from __future__ import annotations

from sandbox.okapi.model import ACCURACY_PROFILE, OkApiState

__all__ = ["ACCURACY_PROFILE", "OkApiState"]
