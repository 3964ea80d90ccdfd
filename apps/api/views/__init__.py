"""Views of the v1 API, one module per app they expose."""
