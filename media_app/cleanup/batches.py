"""Cut a stream into lists of bounded length: one request, one query or one manifest part each."""

import itertools


def batched(items, size):
    """Yield the items in lists of at most ``size``, in order, holding one list at a time."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
