"""Pacing with a clock the test moves: no real waiting."""

from datetime import timedelta

from media_app.cleanup.pacing import Pacing


class FakeClock:
    """A monotonic clock that moves only when told to, or when someone sleeps."""

    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def pacing(rate=None, time_limit=None):
    clock = FakeClock()
    return Pacing(rate, time_limit, clock=clock, sleep=clock.sleep), clock


def test_removals_wait_for_their_share_of_a_second():
    paced, clock = pacing(rate=10)

    paced.pace(5)
    paced.pace(5)

    assert clock.slept == [0.5, 0.5]
    assert clock.now == 101.0, "10 removals at 10 per second take one second"


def test_time_already_spent_removing_counts_towards_the_rate():
    paced, clock = pacing(rate=10)
    paced.pace(5)
    clock.now += 2  # the next batch took long on its own

    paced.pace(5)

    assert clock.slept == [0.5]


def test_without_a_rate_nothing_waits():
    paced, clock = pacing()

    paced.pace(1000)

    assert clock.slept == []


def test_a_batch_is_at_most_one_seconds_worth():
    assert pacing(rate=10)[0].batch_size(1000) == 10
    assert pacing(rate=5000)[0].batch_size(1000) == 1000
    assert pacing()[0].batch_size(1000) == 1000


def test_out_of_time_once_the_limit_has_passed_since_the_start():
    paced, clock = pacing(time_limit=timedelta(minutes=1))

    clock.now += 59.9
    assert not paced.out_of_time()
    clock.now += 0.1
    assert paced.out_of_time()


def test_a_limit_of_zero_is_out_of_time_at_once_and_none_never():
    assert pacing(time_limit=timedelta(0))[0].out_of_time()
    paced, clock = pacing()
    clock.now += 10**9
    assert not paced.out_of_time()
