"""Settings of a sweep process that a fault test drives: the project's, with a faulty media storage.

The test passes the faults in the environment (``tests.storages.FaultyStorage`` says what they
do) and, on PostgreSQL, a name for the process's connections, so that it can find and
terminate them.
"""

from mediaproject.settings import *  # noqa: F403
from mediaproject.settings import DATABASES, env

STORAGES = {
    "default": {
        "BACKEND": "tests.storages.FaultyStorage",
        "OPTIONS": {
            "stall_at": env.str("MEDIA_TEST_STALL_AT", default=""),
            "stall_fds": env.str("MEDIA_TEST_STALL_FDS", default=""),
            "fail_deletes": env.str("MEDIA_TEST_FAIL_DELETES", default=""),
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = env.str(
        "MEDIA_TEST_APPLICATION_NAME", default="cleanup_media"
    )
