from django.contrib import admin, messages
from django.utils import timezone

from assistant.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["visible_prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "name", "visible_prefix"]
    readonly_fields = ["user", "visible_prefix", "created_at", "last_used_at"]
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        # A key is shown exactly once, so it is created where it can be shown: `manage.py apikey create`.
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
