"""``python manage.py gogo_setup``: everything ``make run`` needs before the server starts.

Creates the default instruments, loads the recorded candle history, trains the CNN if no
checkpoint exists (with a progress bar), creates the admin user and its paper account, and prints
the admin login. The generated password is kept in ``var/admin-credentials.txt`` (not committed).
"""
from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.pipeline.bootstrap import bootstrap
from apps.trading.services import account_ensure_paper


class Command(BaseCommand):
    help = "Prepare instruments, history, the first model checkpoint and the admin login."

    def handle(self, *args, **options) -> None:
        bootstrap(progress=self._progress)
        username, password = self._admin()
        account_ensure_paper(owner=get_user_model().objects.get(username=username), name="paper")
        self.stdout.write(self.style.SUCCESS(f"admin login: {username} / {password}"))

    def _admin(self) -> tuple[str, str]:
        credentials = Path(settings.GOGO_VAR_DIR) / "admin-credentials.txt"
        User = get_user_model()
        if credentials.exists() and User.objects.filter(username="admin").exists():
            username, password = credentials.read_text().split()[:2]
            if User.objects.get(username=username).check_password(password):
                return username, password
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        credentials.parent.mkdir(parents=True, exist_ok=True)
        credentials.write_text(f"admin {password}\n")
        credentials.chmod(0o600)
        return "admin", password

    def _progress(self, fraction: float, message: str) -> None:
        self.stdout.write(f"training CNN [{'#' * int(fraction * 30):<30}] {fraction:4.0%} {message}")
