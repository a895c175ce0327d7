"""The in-process sliding-window limiter behind the web-form endpoint, on a clock the test moves by hand."""
from crm.ratelimit import RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_holds_in_any_window_and_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(window=60, clock=clock)
    assert [limiter.hit("t", 3) for _ in range(3)] == [0, 0, 0]  # hits at t=1000
    clock.now = 1010.5
    # The three hits leave the window at t=1060: 49.5 s from now, rounded up to whole seconds.
    assert limiter.hit("t", 3) == 50
    clock.now = 1059.9
    assert limiter.hit("t", 3) == 1  # 0.1 s left: never "0", which would read as "go ahead"
    clock.now = 1060.0
    assert limiter.hit("t", 3) == 0  # the window slid past all three


def test_a_burst_across_a_minute_boundary_is_still_held_to_the_limit():
    clock = Clock()
    limiter = RateLimiter(window=60, clock=clock)
    clock.now = 1059.0
    assert [limiter.hit("t", 2) for _ in range(2)] == [0, 0]
    clock.now = 1061.0  # a fixed per-minute counter would have reset here and let two more through
    assert limiter.hit("t", 2) == 58


def test_refused_hits_are_not_counted_and_keys_are_counted_apart():
    clock = Clock()
    limiter = RateLimiter(window=60, clock=clock)
    assert limiter.hit("a", 1) == 0
    for _ in range(5):
        assert limiter.hit("a", 1) > 0
    assert limiter.hit("b", 1) == 0  # another token has its own allowance
    clock.now = 1060.0
    assert limiter.hit("a", 1) == 0  # the refused attempts did not push the window on
