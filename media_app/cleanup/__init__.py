"""The cleanup sweep; ``engine.run_cleanup`` is its one entry point.

Nothing is imported here, so that ``python -m media_app.cleanup.listing`` runs without Django.
"""
