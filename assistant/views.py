from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from assistant.health import health_report


@require_GET
def health(request):
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@login_required
def dashboard(request):
    api_keys = request.user.api_keys.filter(revoked_at__isnull=True)
    return render(request, "assistant/dashboard.html", {"api_keys": api_keys})
