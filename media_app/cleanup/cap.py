"""The safety cap: the guard against a sweep pointed at an empty or a wrong database.

A run that would delete more than a share (``MEDIA_CLEANUP_MAX_DELETE_RATIO``) of the files
listed under ``uploads/``, or of the media rows, and more than a floor of items of that kind
(``MEDIA_CLEANUP_CAP_MIN_ITEMS``), is refused before its first delete, unless forced.
"""


def over_cap(*, files, files_listed, rows, rows_checked, ratio, floor):
    """Return what the run would delete beyond the cap, e.g. "20 of 20 files under uploads/ (...)", or ""."""
    reasons = [
        f"{doomed} of {total} {kind}"
        for doomed, total, kind in [
            (files, files_listed, "files under uploads/"),
            (rows, rows_checked, "media rows"),
        ]
        if doomed > floor and doomed > ratio * total
    ]
    if not reasons:
        return ""
    return f"{' and '.join(reasons)} (more than {ratio:.0%} and more than {floor} items)"
