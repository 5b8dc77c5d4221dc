#!/usr/bin/env python
"""Django's command-line utility; configuration errors and missing services end in one line, not a traceback."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError, ProgrammingError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from inference.plumbing.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as error:
        sys.stderr.write(f"configuration error: {error}\n")
        sys.exit(2)
    except RedisConnectionError as error:
        from django.conf import settings

        sys.stderr.write(
            f"cannot reach Redis at {settings.REDIS_URL} ({error}); start the stack with `make up`, or set REDIS_URL\n"
        )
        sys.exit(1)
    except (OperationalError, ProgrammingError) as error:
        if "no such table" not in str(error) and "does not exist" not in str(error):
            raise
        sys.stderr.write(f"the database is not migrated ({error}); run `python manage.py migrate` (or `make up`)\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
