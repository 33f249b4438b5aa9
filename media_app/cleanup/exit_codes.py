"""The exit codes of ``cleanup_media`` and ``restore_media``, and how their ``--help`` states them.

Each result maps its own statuses to these codes (``result.EXIT_CODES``, ``restore.EXIT_CODES``):
the same status may mean another outcome in each, e.g. ``partial`` is a sweep to carry on
(success) but a restore that skipped something (failure).
"""

SUCCESS = 0
FAILURE = 1
USAGE_ERROR = 2  # Django's code for a bad argument: nothing was started
TRY_AGAIN_LATER = 75  # EX_TEMPFAIL of sysexits.h: another run holds the lock


def described(exit_codes):
    """Return ``{status: code}`` as ``--help`` says it, e.g. "0 ok or partial, 1 errors, 2 usage error"."""
    statuses = {USAGE_ERROR: ["usage error"]}
    for status, code in exit_codes.items():
        statuses.setdefault(code, []).append(str(status))
    return ", ".join(f"{code} {_either(names)}" for code, names in sorted(statuses.items()))


def _either(names):
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
