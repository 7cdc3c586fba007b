"""Admin actions that issue a secret (a shop's API key, a feed's push token, a webhook secret).

Each one asks first: the action only leads to a confirmation page (GET, nothing changes); its
form POSTs back, and the secrets are issued and shown once in that POST's own response. They
never go through Django's messages (a cookie, unencrypted) or the session, and the page is not
cached (`admin_view` marks it never-cache, and no-store on top).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class SecretIssue(Generic[M]):
    """One kind of secret an admin issues for the selected rows."""

    slug: str  # URL segment: <app>/<model>/<slug>/
    title: str  # "Rotate push API tokens"
    consequence: str  # what happens to the old secret, said on the confirmation page
    issue: Callable[[HttpRequest, M], str]  # does the write, returns the secret to show
    label: Callable[[M], str] = str

    def url_name(self, model: type[models.Model]) -> str:
        meta = model._meta
        return f"{meta.app_label}_{meta.model_name}_{self.slug.replace('-', '_')}"


def _selected_ids(raw: str) -> list[int]:
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]


class SecretIssuingAdmin(admin.ModelAdmin[M]):
    """Adds a confirm-then-show view per entry of `secret_issues`; an action leads to it."""

    secret_issues: tuple[SecretIssue[M], ...] = ()

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                f"{issue.slug}/",
                self.admin_site.admin_view(self._issue_view(issue)),
                name=issue.url_name(self.model),
            )
            for issue in self.secret_issues
        ]
        return extra + super().get_urls()

    def confirm_secret_issue(
        self, request: HttpRequest, queryset: models.QuerySet[M], slug: str
    ) -> HttpResponseRedirect:
        """The action's whole work: go to the confirmation page for the selected rows."""
        issue = next(i for i in self.secret_issues if i.slug == slug)
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        url = reverse(f"admin:{issue.url_name(self.model)}")
        return HttpResponseRedirect(f"{url}?{urlencode({'ids': ids})}")

    def _issue_view(self, issue: SecretIssue[M]) -> Callable[[HttpRequest], HttpResponse]:
        def view(request: HttpRequest) -> HttpResponse:
            if not self.has_change_permission(request):
                raise PermissionDenied
            source = request.POST if request.method == "POST" else request.GET
            ids = _selected_ids(source.get("ids", ""))
            rows = list(self.get_queryset(request).filter(pk__in=ids))
            context: dict[str, Any] = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": issue.title,
                "issue": issue,
                "ids": ",".join(str(row.pk) for row in rows),
                "labels": [issue.label(row) for row in rows],
                "changelist_url": reverse(
                    f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_changelist"
                ),
            }
            if request.method != "POST":
                return TemplateResponse(request, "admin/secret_issue_confirm.html", context)
            # All or none: a failure halfway must not leave rotated secrets nobody was shown.
            with transaction.atomic():
                issued = [(issue.label(row), issue.issue(request, row)) for row in rows]
            response = TemplateResponse(
                request, "admin/secret_issued.html", {**context, "issued": issued}
            )
            response["Cache-Control"] = "no-store"
            return response

        return view
