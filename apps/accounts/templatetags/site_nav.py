"""Template helpers of the site chrome (templates/base.html): the user's role and nav links."""
from __future__ import annotations

import logging

from django import template
from django.utils.html import format_html

from apps.accounts.roles import user_role

logger = logging.getLogger(__name__)

register = template.Library()


@register.filter
def role(user) -> str:
    """The user's role name (viewer, trader, admin), or "" for an anonymous user."""
    return user_role(user) or ""


@register.simple_tag(takes_context=True)
def nav_link(context, href: str, label: str) -> str:
    """``<a>`` to ``href``; marked ``aria-current="page"`` when the request path is under it
    ("/" only matches itself)."""
    request = context.get("request")
    path = request.path if request is not None else ""
    current = path == href if href == "/" else path.startswith(href)
    if current:
        return format_html('<a href="{}" aria-current="page">{}</a>', href, label)
    return format_html('<a href="{}">{}</a>', href, label)
