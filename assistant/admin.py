from django.contrib import admin, messages
from django.utils import timezone

from assistant.forms import AdminLoginForm
from assistant.models import ApiKey, Conversation, Message

# The admin's login counts toward, and is refused by, the same failed-login limit as the site's.
admin.site.login_form = AdminLoginForm


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


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["role", "content", "sources", "ttft_s", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Read-only: staff may look, e.g. to diagnose a bad answer, but a conversation is its owner's record."""

    list_display = ["title", "user", "created_at", "updated_at"]
    search_fields = ["title", "user__username"]
    inlines = [MessageInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
