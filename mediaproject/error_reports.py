"""What error pages and error reports may show: Django's filter, with connection URLs' passwords hidden."""

import re

from django.views.debug import SafeExceptionReporterFilter

from .environment import redact


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hide connection URLs and DSNs, and the password of any URL or connection string shown.

    Used for DEBUG's error page (whose request.META holds the whole environment under
    runserver), for the reports ``mail_admins`` sends, and for the local variables of every
    frame, where a failed database connection leaves its parameters.
    """

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + r"|DSN|(DATABASE|EMAIL|CACHE|REDIS|BROKER)_URL",
        flags=re.IGNORECASE,
    )

    def cleanse_setting(self, key, value):
        """Return the value Django's filter shows, with any password in its text redacted."""
        cleansed = super().cleanse_setting(key, value)
        return redact(cleansed) if isinstance(cleansed, str) else cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        """Return the frame's variables, with secrets in names, keys and text hidden."""
        return [
            (name, self.cleanse_variable(name, value, depth=2))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def cleanse_variable(self, name, value, depth):
        """Return a variable cleansed like a setting, looking into containers ``depth`` levels down."""
        if isinstance(value, str) or self.hidden_settings.search(str(name)):
            return self.cleanse_setting(str(name), value)
        if depth and type(value) in (dict, list, tuple):
            # Only plain containers, and not too deep: a frame may hold anything, cycles included.
            if isinstance(value, dict):
                return {key: self.cleanse_variable(key, item, depth - 1) for key, item in value.items()}
            return type(value)(self.cleanse_variable("", item, depth - 1) for item in value)
        return value
