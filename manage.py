#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    """Run administrative tasks; a setting the project cannot use ends them in one line, status 2."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaproject.settings")
    from django.core.management import execute_from_command_line

    from mediaproject.environment import SettingError

    try:
        execute_from_command_line(sys.argv)
    except SettingError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
