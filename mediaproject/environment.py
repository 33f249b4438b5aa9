"""Read the project's settings from the environment, each checked for type and range.

A value the project cannot use stops it before anything runs, with ``SettingError``: one line
naming the variable, the value it got (any password redacted) and what it accepts, which
``manage.py`` and ``wsgi.py`` print before they exit with status 2. An unset or empty variable
takes its default. Nothing here imports Django's setup, so that the settings module can use it
while it loads.
"""

import hashlib
import io
import math
import os
import re
import shlex
import warnings
import zoneinfo
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email

from media_app.durations import GRAMMAR, MAX_DURATION, parse_duration

TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")
DATABASE_KINDS = {"django.db.backends.sqlite3": "sqlite", "django.db.backends.postgresql": "postgresql"}
DATABASE_EXAMPLE = "sqlite:////srv/tours/db.sqlite3 or postgres://user:password@host:5432/name"
# Hosts that mean "this machine" (a path is PostgreSQL's socket folder on it).
LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")
POSTGRESQL_PORT = 5432
SHOWN_CHARACTERS = 80
REDACTED = "***"
# The password of scheme://user:password@host; percent-encoding keeps "/", "?" and "#" out of it.
URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/?#@\s]*):[^/?#\s]*@", re.IGNORECASE)
# The password of a libpq connection string (host=... password=...), which psycopg builds.
KEYWORD_PASSWORD = re.compile(r"\b(password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s']\S*)", re.IGNORECASE)
# A line that django-environ's read_env() understands; it skips any other with a log warning.
ENV_FILE_LINE = re.compile(r"(?:export )?[A-Za-z_0-9]+=")
# The e-mail URLs accepted, each with the port its protocol's standard gives when the URL has none
# (django-environ leaves it unset, and Django's default of 25 is wrong with TLS from the start).
EMAIL_SCHEMES = {
    "smtp": 25,
    "smtp+tls": 587,
    "smtp+ssl": 465,
    "consolemail": None,
    "filemail": None,
    "memorymail": None,
    "dummymail": None,
}
EMAIL_EXAMPLE = "smtp+tls://user:password@mail.example.ge:587"
SENTRY_DSN_EXAMPLE = "https://PUBLIC_KEY@o1.ingest.sentry.io/PROJECT_ID"


class SettingError(ImproperlyConfigured):
    """A variable of the environment holds a value the project cannot use; the message is one line."""


def redact(text):
    """Return ``text`` with the password of every URL and connection string in it replaced by ***."""
    text = URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    return KEYWORD_PASSWORD.sub(rf"\1{REDACTED}", text)


def shown(value):
    """Return a value quoted for a one-line message: passwords redacted, cut short when long."""
    value = redact(str(value))
    if len(value) <= SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value)} characters)"


def refusal(name, value, accepts):
    """Return the SettingError for ``name`` holding ``value``, saying what it accepts."""
    return SettingError(f"{name}={shown(value)}: expected {accepts}")


def is_host(item):
    """Return True for an ALLOWED_HOSTS entry: a host name or pattern, without scheme or path."""
    return not re.search(r"[\s/]", item)


def is_email_address(address):
    """Return True for an address Django can send to, such as ops@example.ge or root@localhost."""
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def mailboxes(text):
    """Return the ``(name, address)`` pairs of comma-separated ``Name <address>`` or bare addresses."""
    return [(name, address) for name, address in getaddresses([text]) if name or address]


def is_origin(item):
    """Return True for a CSRF_TRUSTED_ORIGINS entry: a scheme and a host, e.g. https://example.ge."""
    try:
        parts = urlsplit(item)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.path in ("", "/")


class Env:
    """Read variables of the environment as checked values; an unset or empty variable is the default.

    The readers are named after django-environ's (``str``, ``bool``, ``int``...), which this
    project used before; unlike them, each refuses what it cannot read instead of guessing.
    """

    def raw(self, name):
        """Return the variable's text, or None when it is unset or empty."""
        return os.environ.get(name) or None

    def read_env_file(self, name, default):
        """Load the file ``name`` names (``default`` when unset and present; none when empty); return it.

        The environment wins over the file. Every line must be NAME=value, a comment or blank.
        The lines go to django-environ, which parses their quotes.
        """
        value = os.environ.get(name)
        if value == "":
            return ""
        path = Path(default if value is None else value)
        if value is None and not path.exists():
            return ""
        if not path.is_file():
            raise refusal(name, path, "an existing file of settings, or an empty value to read none")
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise refusal(name, path, f"a readable file of settings ({reason})") from None
        settings = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not ENV_FILE_LINE.match(line):
                # The line itself is never shown: it may hold a secret.
                raise refusal(
                    name, path, f"NAME=value on every line, without spaces around '=' (line {number} is not)"
                )
            settings.append(line)
        environ.Env.read_env(io.StringIO("\n".join(settings)))
        return str(path)

    def str(self, name, default=""):
        """Return the variable as it is written."""
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name, default):
        """Return on/off (also true/false, yes/no, 1/0, in any case) as a bool."""
        value = self.raw(name)
        if value is None:
            return default
        word = value.strip().lower()
        if word in TRUE or word in FALSE:
            return word in TRUE
        raise refusal(name, value, "on or off (or true/false, yes/no, 1/0)")

    def int(self, name, default, minimum, example):
        """Return a whole number of at least ``minimum``."""
        value = self.raw(name)
        if value is None:
            return default
        # Eighteen digits is beyond any count here, and keeps int() away from huge inputs.
        if re.fullmatch(r"\s*[+-]?[0-9]{1,18}\s*", value) and int(value) >= minimum:
            return int(value)
        raise refusal(name, value, f"a whole number, {minimum} or more, such as {example}")

    def float(self, name, default, minimum, maximum, example):
        """Return a finite number from ``minimum`` to ``maximum``."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and minimum <= number <= maximum:
            return number
        raise refusal(name, value, f"a number from {minimum} to {maximum}, such as {example}")

    def choice(self, name, default, choices):
        """Return the one of ``choices`` the variable names, in any case."""
        value = self.raw(name)
        if value is None:
            return default
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        raise refusal(name, value, f"one of {', '.join(choices)}")

    def list(self, name, default, valid, accepts):
        """Return the comma-separated items, each of which ``valid`` accepts."""
        value = self.raw(name)
        if value is None:
            return list(default)
        items = [item.strip() for item in value.split(",") if item.strip()]
        refused = [item for item in items if not valid(item)]
        if refused or not items:
            raise refusal(name, value, f"{accepts}{f' (not {refused[0]!r})' if refused else ''}")
        return items

    def path(self, name, default, example, suffix=""):
        """Return an absolute path (ending with ``suffix``, when given).

        A relative path would change with the folder each process starts in.
        """
        value = self.raw(name)
        if value is None:
            return str(default)
        if not (os.path.isabs(value) and value.endswith(suffix)):
            ending = f" ending with {suffix}" if suffix else ""
            raise refusal(name, value, f"an absolute path{ending}, such as {example}")
        return str(Path(value))

    def url(self, name, default, example):
        """Return an http(s) URL with a host."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            raise refusal(name, value, f"an http:// or https:// URL, such as {example}")
        return value

    def addresses(self, name, default, example):
        """Return e-mail addresses as Django's ADMINS has them: ``[(name, address)]``."""
        value = self.raw(name)
        if value is None:
            return list(default)
        found = mailboxes(value)
        refused = [address or person for person, address in found if not is_email_address(address)]
        if refused or not found:
            accepts = (
                f"e-mail addresses separated by commas, each `Name <address>` or bare, such as {example}"
            )
            raise refusal(name, value, f"{accepts}{f' (not {refused[0]!r})' if refused else ''}")
        return found

    def address(self, name, default, example):
        """Return one e-mail address as written, bare or ``Name <address>``."""
        value = self.str(name, default).strip()
        found = mailboxes(value)
        if len(found) != 1 or not is_email_address(found[0][1]):
            raise refusal(name, value, f"one e-mail address, bare or `Name <address>`, such as {example}")
        return value

    def email_url(self, name, default):
        """Return Django's e-mail settings (EMAIL_BACKEND, EMAIL_HOST...) of a URL, read by django-environ."""
        value = self.str(name, default)
        try:
            parts = urlsplit(value)
            port = parts.port  # a port that is not a number from 0 to 65535 raises ValueError
            config = environ.Env.email_url_config(value)
        except (ValueError, ImproperlyConfigured):
            parts, port, config = None, None, {}
        scheme = parts.scheme if parts else ""
        if scheme == "smtps":
            # django-environ reads it as STARTTLS, where the name usually means TLS from the start.
            raise refusal(
                name, value, "smtp+ssl:// (TLS from the start, port 465) or smtp+tls:// (STARTTLS, port 587)"
            )
        if scheme not in EMAIL_SCHEMES or not config:
            schemes = ", ".join(f"{known}://" for known in EMAIL_SCHEMES)
            raise refusal(name, value, f"an e-mail URL, one of {schemes}, such as {EMAIL_EXAMPLE}")
        if parts.query or parts.fragment:
            # django-environ would hand a query's options to nobody, and read "false" as true.
            raise refusal(name, value, f"an e-mail URL without options after '?', such as {EMAIL_EXAMPLE}")
        if EMAIL_SCHEMES[scheme] and not parts.hostname:
            raise refusal(name, value, f"an SMTP URL that names the server, such as {EMAIL_EXAMPLE}")
        if scheme == "filemail" and not os.path.isabs(config["EMAIL_FILE_PATH"]):
            raise refusal(
                name, value, "filemail:// and an absolute folder, such as filemail:////var/mail/tours"
            )
        settings = {key: setting for key, setting in config.items() if setting not in (None, "")}
        settings.pop("OPTIONS", None)
        if EMAIL_SCHEMES[scheme]:
            settings["EMAIL_PORT"] = port or EMAIL_SCHEMES[scheme]
        return settings

    def sentry_dsn(self, name):
        """Return a Sentry DSN (a project's key, the server and the project's number), or "" when unset."""
        value = self.str(name)
        if not value:
            return ""
        try:
            parts = urlsplit(value)
            valid = parts.port is None or parts.port > 0
        except ValueError:
            valid = False
        valid = valid and parts.scheme in ("http", "https") and bool(parts.username and parts.hostname)
        if not (valid and parts.path.rpartition("/")[2].isdigit()):
            raise refusal(name, value, f"a Sentry DSN, such as {SENTRY_DSN_EXAMPLE}")
        return value

    def url_prefix(self, name, default, example):
        """Return a URL or path that ends with a slash, as Django wants of MEDIA_URL."""
        value = self.raw(name)
        if value is None:
            return default
        if not value.endswith("/") or re.search(r"\s", value):
            raise refusal(name, value, f"a URL path ending with '/', such as {example}")
        return value

    def key_prefix(self, name, default, outside):
        """Return a key prefix of object storage: not empty, and not under ``outside``."""
        value = self.str(name, default)
        prefix = value.strip("/") + "/"
        if prefix == "/" or prefix.startswith(outside):
            raise refusal(name, value, f"a key prefix outside {outside}, such as {default}")
        return value

    def duration(self, name, default, allow_zero):
        """Return a duration as written (0, 3600, 90s, 30m, 6h, 2d), from 0 or 1s up to ten years."""
        value = self.str(name, default)
        try:
            valid = parse_duration(value).total_seconds() > 0 or allow_zero
        except ValueError:
            valid = False
        if not valid:
            lowest = "0" if allow_zero else "1s"
            accepts = f"a duration from {lowest} to {MAX_DURATION.days}d (ten years), in the form {GRAMMAR}"
            raise refusal(name, value, accepts)
        return value

    def time_zone(self, name, default):
        """Return an IANA time zone name that this system knows."""
        value = self.str(name, default)
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value
        city = value.rsplit("/", 1)[-1].lower()
        known = sorted(
            zone for zone in zoneinfo.available_timezones() if zone.rsplit("/", 1)[-1].lower() == city
        )
        hint = f"; did you mean {' or '.join(known)}?" if known else ""
        raise refusal(name, value, f"an IANA time zone name, such as Asia/Tbilisi or UTC{hint}")

    def command(self, name, default, example):
        """Return a command line that a shell would split into words."""
        value = self.str(name, default)
        try:
            valid = bool(shlex.split(value))
        except ValueError:
            valid = False
        if not valid:
            raise refusal(name, value, f"a command, such as {example}")
        return value

    def proxy_ssl_header(self, name):
        """Return SECURE_PROXY_SSL_HEADER's pair (header, value), or None when unset."""
        value = self.raw(name)
        if value is None:
            return None
        header, _, secure = (part.strip() for part in value.partition(","))
        if not re.fullmatch(r"HTTP_[A-Z0-9_]+", header) or not secure or "," in secure:
            raise refusal(
                name,
                value,
                "the request header as Django names it and the value that means HTTPS, "
                "such as HTTP_X_FORWARDED_PROTO,https",
            )
        return header, secure

    def db_url(self, name, default):
        """Return Django's settings of the SQLite or PostgreSQL database that a URL names."""
        value = self.str(name, default)
        with warnings.catch_warnings():
            # django-environ warns of a scheme it does not know; it is refused below.
            warnings.simplefilter("ignore")
            try:
                database = environ.Env.db_url_config(value)
            except (ValueError, ImproperlyConfigured):
                database = {}
        kind = DATABASE_KINDS.get(database.get("ENGINE"))
        if kind is None:
            raise refusal(name, value, f"a SQLite or PostgreSQL URL, such as {DATABASE_EXAMPLE}")
        if not database.get("NAME"):
            raise refusal(name, value, f"a URL that names the database, such as {DATABASE_EXAMPLE}")
        if kind == "sqlite" and not (os.path.isabs(database["NAME"]) and Path(database["NAME"]).name):
            raise refusal(
                name, value, "an absolute path to the SQLite file, such as sqlite:////srv/tours/db.sqlite3"
            )
        return database


def database_label(database, project_folder):
    """Return a folder name that tells databases apart, stable and safe in a file system.

    ``sqlite-db`` for ``<project>/db.sqlite3`` (a file elsewhere adds a hash of its path),
    ``postgresql-NAME`` on this machine's default port (another server adds its host and port).
    """
    kind = DATABASE_KINDS[database["ENGINE"]]
    if kind == "sqlite":
        path = Path(database["NAME"])
        label = f"sqlite-{path.stem}"
        if path.parent != Path(project_folder):
            label += "-" + hashlib.sha256(str(path).encode()).hexdigest()[:8]
    else:
        host = str(database.get("HOST") or database.get("OPTIONS", {}).get("host", ""))
        port = int(database.get("PORT") or POSTGRESQL_PORT)
        label = f"postgresql-{database['NAME']}"
        if host not in LOCAL_HOSTS and not host.startswith("/"):
            label += f"-{host}-{port}"
        elif port != POSTGRESQL_PORT:
            label += f"-{port}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)
