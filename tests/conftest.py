import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings

# The named SQLite test database (see settings) lives here.
(Path(django_settings.BASE_DIR) / "var").mkdir(exist_ok=True)


def require_tool(name):
    """Return the path of a system binary; skip without it, or fail under REQUIRE_SYSTEM_DEPS=1."""
    path = shutil.which(name)
    if path:
        return path
    message = f"`{name}` is not installed: run `make system-deps` to install it"
    if os.environ.get("REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(message + " (REQUIRE_SYSTEM_DEPS=1 forbids skipping)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    """Give every test its own empty MEDIA_ROOT."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def outside_dir(tmp_path):
    """A folder next to MEDIA_ROOT, standing for everything the product must never touch."""
    path = tmp_path / "outside"
    path.mkdir()
    return path
