"""Send errors to Sentry: started by the settings when ``SENTRY_DSN`` is set, which needs sentry-sdk.

Only the settings import this module, and only with a DSN: without one, nothing of sentry-sdk is
loaded. Django's integration reports unhandled errors of requests and commands; sentry-sdk's
default logging integration turns every ERROR log line (a failed sweep, an alert not sent)
into an event. Every text of an event has its passwords redacted before it leaves, as
Django's error reports have (``error_reports.py``).
"""

from .environment import SettingError, redact


def start_sentry(dsn):
    """Initialise sentry-sdk with Django's integration; refuse in one line when it is not installed."""
    try:
        import sentry_sdk
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError:
        raise SettingError(
            "SENTRY_DSN is set, but sentry-sdk is not installed: run `pip install sentry-sdk` "
            "(requirements-dev.txt pins the version), or unset SENTRY_DSN."
        ) from None
    sentry_sdk.init(dsn=dsn, integrations=[DjangoIntegration()], before_send=redacted)


def redacted(event, hint):
    """Return the event with the password of every URL and connection string in its texts replaced."""
    return _redacted(event)


def _redacted(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(item) for item in value)
    return value
