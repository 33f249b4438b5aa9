"""Index media file names in byte order on PostgreSQL, for the sweep's ordered stream.

The sweep reads every row ordered by ``file COLLATE "C"``; without this index PostgreSQL
sorts the whole table on each run. SQLite's default index is already in byte order (BINARY),
so there is nothing to do there.
"""
from django.db import migrations

INDEX = "media_file_bytes_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("media_app", "Media")._meta.db_table)
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS {INDEX} ON {table} (file COLLATE "C")')


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("media_app", "0002_cleanuprun")]

    operations = [migrations.RunPython(create_index, drop_index)]
