"""Settings entry point: everything is read from the environment in ``base`` and the integration modules (in this order)."""
# ruff: noqa: I001
from gogo.settings.base import *  # noqa: F401,F403
from gogo.settings.api import *  # noqa: F401,F403
from gogo.settings.security import *  # noqa: F401,F403
