"""worldpool's HTTP API: REST + Server-Sent Events + the bundled dashboard.

Needs the ``api`` extra (``pip install 'worldpool[api]'``).
"""

from worldpool.api.app import create_app
from worldpool.api.auth import ApiTokens, Role

__all__ = ["ApiTokens", "Role", "create_app"]
