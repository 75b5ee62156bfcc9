"""The WSGI entry point (gunicorn wsgi:app) and the app `flask --app wsgi` loads."""

import sys

from bot.app import create_app
from bot.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # one clear message for operators, not a traceback
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
