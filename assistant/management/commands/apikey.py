from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from assistant.models import ApiKey
from assistant.services import do_create_api_key


class Command(BaseCommand):
    help = "Create, list or revoke per-user API keys. A new key is printed once, as the last word."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a key and print it once")
        create.add_argument("--user", required=True)
        create.add_argument("--name", default="")
        listing = actions.add_parser("list", help="list a user's keys (never the keys themselves)")
        listing.add_argument("--user", required=True)
        revoke = actions.add_parser("revoke", help="revoke a key by its visible prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, action, **options):
        if action == "revoke":
            return self.revoke(options["prefix"])
        user = self.find_user(options["user"])
        if action == "create":
            api_key, raw_key = do_create_api_key(user, options["name"])
            self.stdout.write(f"Created API key {api_key.visible_prefix}… for {user.get_username()}.")
            self.stdout.write("It is shown only this once; store it now:")
            self.stdout.write(raw_key)
        else:
            for api_key in user.api_keys.all():
                state = "revoked" if api_key.revoked_at else "active"
                self.stdout.write(f"{api_key.visible_prefix}…  {state:8}  {api_key.created_at:%Y-%m-%d}  {api_key.name}")

    @staticmethod
    def find_user(username):
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None

    def revoke(self, prefix):
        matches = ApiKey.objects.filter(visible_prefix=prefix.rstrip("…"), revoked_at__isnull=True)
        if matches.count() != 1:
            raise CommandError(f"{matches.count()} active keys start with {prefix!r}; expected exactly one")
        matches.get().revoke()
        self.stdout.write(f"Revoked {prefix}.")
