"""The pace of a run's removals: at most ``--rate`` items a second, and none after ``--time-limit``."""

import time


class Pacing:
    """Hold removals to ``rate`` per second and tell when ``time_limit`` has passed since the start.

    The clock and the sleep are those of the ``time`` module unless given (tests pass a fake).
    """

    def __init__(self, rate=None, time_limit=None, *, clock=time.monotonic, sleep=time.sleep):
        self.rate = rate
        self.time_limit = None if time_limit is None else time_limit.total_seconds()
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.removed = 0
        self.removal_started = None

    def batch_size(self, largest):
        """Return how many items a batch may hold: with a rate, at most one second's worth."""
        # One second's worth at a time keeps the pace smooth rather than a burst and a long sleep.
        return max(1, min(largest, self.rate)) if self.rate else largest

    def out_of_time(self):
        """Return True once the run has taken ``time_limit``."""
        return self.time_limit is not None and self.clock() - self.started >= self.time_limit

    def pace(self, removed):
        """Count ``removed`` items, and sleep as long as removals run ahead of ``rate``."""
        if not self.rate:
            return
        if self.removal_started is None:
            self.removal_started = self.clock()
        self.removed += removed
        ahead = self.removed / self.rate - (self.clock() - self.removal_started)
        if ahead > 0:
            self.sleep(ahead)
