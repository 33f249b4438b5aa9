"""Walk the files under ``uploads/`` once: the floor's first pass, free of Django so it costs nothing else."""

import os
import stat

UPLOADS_FOLDER = "uploads"  # media_app.models.UPLOADS_FOLDER, not imported: this pass loads no Django


def walk_files(media_root):
    """Yield the name (relative to ``media_root``) of every file under ``uploads/``, lstat-ing each."""
    skip = len(os.path.join(media_root, ""))
    folders = [os.path.join(media_root, UPLOADS_FOLDER)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode):
                    folders.append(entry.path)
                else:
                    yield entry.path[skip:]
