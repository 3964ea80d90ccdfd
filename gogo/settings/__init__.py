"""Settings entry point: everything is read from the environment in ``base``."""
from gogo.settings.base import *  # noqa: F401,F403
