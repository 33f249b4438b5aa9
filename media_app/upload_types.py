"""The types an upload may be, told by its content, with the file extensions each may carry.

A leaf: it imports nothing, so that the settings can check ``MEDIA_UPLOAD_ALLOWED_TYPES``
against it while they load.
"""

# Anything else (.html, .svg, .exe...) is refused even when the content would pass, so that a
# web server never serves a polyglot as something else.
EXTENSIONS = {
    "image/jpeg": {".jpg", ".jpeg"},
    "image/png": {".png"},
    "image/gif": {".gif"},
    "image/webp": {".webp"},
    "application/pdf": {".pdf"},
}
