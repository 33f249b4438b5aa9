"""The merge at the heart of the sweep: streams sorted by name, lined up one name at a time.

Names compare as Python compares ``str`` (code points, which for UTF-8 is byte order): the
database is asked for that order, and the storages list in it.
"""

import heapq

# Sorts after every name the streams carry: they all start with "uploads/".
END = "\U0010ffff"


class OutOfOrder(Exception):
    """A stream that must be sorted by name was not: the merge cannot be trusted."""


def merged(streams):
    """Return one stream of the items of ``streams``, each sorted, in sorted order."""
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams) if streams else iter(())


def align(references, orphans, stored_files):
    """Merge three streams sorted by name into one ``(name, references, orphan pks, stored)`` per name.

    ``references`` yields a name once per referencing row, ``orphans`` ``(name, pk)`` pairs, and
    ``stored_files`` objects with a unique ``name`` (``StoredFile``). A stream out of order (or a
    name listed twice) raises ``OutOfOrder``: the merge would otherwise see unreferenced files
    where there are none.
    """
    no_orphan = (END, None)
    reference = next(references, END)
    orphan_name, orphan_pk = next(orphans, no_orphan)
    stored = next(stored_files, None)
    stored_name = END if stored is None else stored.name
    previous = ""
    while True:
        name = reference if reference < stored_name else stored_name
        if orphan_name < name:
            name = orphan_name
        if name == END:
            return
        if name <= previous:
            raise OutOfOrder(f"the streams are not sorted by name: {name!r} came after {previous!r}")
        previous = name
        count = 0
        while reference == name:
            count += 1
            reference = next(references, END)
        pks = ()
        if orphan_name == name:
            pks = []
            while orphan_name == name:
                pks.append(orphan_pk)
                orphan_name, orphan_pk = next(orphans, no_orphan)
        here = None
        if stored_name == name:
            here = stored
            stored = next(stored_files, None)
            stored_name = END if stored is None else stored.name
        yield name, count, pks, here
