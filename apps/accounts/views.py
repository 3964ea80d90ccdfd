"""Account pages: the signed-in user's role and trading accounts, and password change.

Login and logout are Django's views (``gogo/urls.py``); logout is a POST (Django 5)."""
from __future__ import annotations

import logging

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET

from apps.accounts.selectors import account_overview

logger = logging.getLogger(__name__)


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    """GET /accounts/: role, what it allows, trading accounts, recent audit entries."""
    return render(request, "accounts/account.html", {"overview": account_overview(user=request.user)})


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change (old password + new twice, validated by AUTH_PASSWORD_VALIDATORS);
    the session stays signed in afterwards."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"
