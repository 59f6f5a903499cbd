"""`Limits.share`: one worker's part of the run's call limits (compile --workers, both Ray executors)."""

from humanllm_dsl.runtime.calls import Limits


def test_a_share_divides_the_rates_and_rounds_calls_in_flight_up():
    whole = Limits(concurrency=10, rpm=600.0, tpm=90_000.0, timeout=7.0, max_retries=2)
    part = whole.share(4)
    assert (part.concurrency, part.rpm, part.tpm) == (3, 150.0, 22_500.0)
    assert (part.timeout, part.max_retries, part.backoff) == (7.0, 2, whole.backoff)


def test_every_worker_keeps_one_call_and_no_limit_stays_no_limit():
    part = Limits(concurrency=2).share(5)
    assert (part.concurrency, part.rpm, part.tpm) == (1, None, None)
    assert Limits(concurrency=3, rpm=60.0).share(1) == Limits(concurrency=3, rpm=60.0)
