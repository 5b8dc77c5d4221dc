from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from assistant import login_limit
from assistant.health import health_report


@require_GET
def health(request):
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@login_required
def dashboard(request):
    api_keys = request.user.api_keys.filter(revoked_at__isnull=True)
    return render(request, "assistant/dashboard.html", {"api_keys": api_keys})


class LoginView(auth_views.LoginView):
    """Django's login, refusing a (username, address) pair for a while after too many failures."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        address = login_limit.client_address(request)
        if login_limit.is_locked_out(username, address):
            minutes = login_limit.LOCKOUT_S // 60
            context = self.get_context_data(form=self.get_form(), locked_out_minutes=minutes)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        login_limit.clear_failures(form.get_user().get_username(), login_limit.client_address(self.request))
        return super().form_valid(form)

    def form_invalid(self, form):
        login_limit.record_failure(self.request.POST.get("username", ""), login_limit.client_address(self.request))
        return super().form_invalid(form)
