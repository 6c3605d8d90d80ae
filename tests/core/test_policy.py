"""The restart decision, exhaustively: every policy, every outcome, every failure count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pmtop.core.model import RestartPolicy, RestartSpec
from pmtop.core.process.policy import GiveUp, Outcome, Rest, Retry, backoff_delay, decide

delays = st.floats(min_value=0, max_value=3600, allow_nan=False)
specs = st.builds(
    RestartSpec,
    policy=st.sampled_from(RestartPolicy),
    backoff=st.lists(delays, min_size=0, max_size=8).map(tuple),
    max_restarts=st.integers(min_value=0, max_value=20),
    reset_after=delays,
    retry_forever=st.booleans(),
    retry_forever_interval=delays,
)


@given(specs, st.sampled_from(Outcome), st.integers(min_value=0, max_value=50))
def test_decide_follows_the_rules(spec: RestartSpec, outcome: Outcome, failures: int) -> None:
    decision = decide(outcome, failures, spec)
    if outcome is Outcome.CLEAN_EXIT and spec.policy is not RestartPolicy.ALWAYS:
        assert decision == Rest()
    elif spec.policy is RestartPolicy.NO:
        assert decision == GiveUp(failures + 1)
    elif failures + 1 <= spec.max_restarts:
        assert decision == Retry(backoff_delay(spec, failures + 1), failures + 1, spec.max_restarts)
    elif spec.retry_forever:
        assert decision == Retry(spec.retry_forever_interval, failures + 1, None)
    else:
        assert decision == GiveUp(failures + 1)


@given(specs, st.integers(min_value=1, max_value=100))
def test_backoff_uses_the_nth_delay_and_repeats_the_last(spec: RestartSpec, attempt: int) -> None:
    delay = backoff_delay(spec, attempt)
    if not spec.backoff:
        assert delay == 0.0
    elif attempt <= len(spec.backoff):
        assert delay == spec.backoff[attempt - 1]
    else:
        assert delay == spec.backoff[-1]


@given(specs)
def test_a_failing_process_gives_up_after_exactly_max_restarts(spec: RestartSpec) -> None:
    """Feed failures in until the policy stops retrying: that takes max_restarts retries (or never)."""
    failures, retries = 0, 0
    while True:
        decision = decide(Outcome.FAILURE, failures, spec)
        if not isinstance(decision, Retry) or retries > spec.max_restarts + 3:
            break
        failures, retries = decision.attempt, retries + 1
    if spec.policy is RestartPolicy.NO:
        assert retries == 0 and isinstance(decision, GiveUp)
    elif spec.retry_forever:
        assert isinstance(decision, Retry) and decision.limit is None
    else:
        assert retries == spec.max_restarts and decision == GiveUp(spec.max_restarts + 1)


def test_default_schedule_matches_the_spec() -> None:
    spec = RestartSpec()
    assert [backoff_delay(spec, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert decide(Outcome.FAILURE, 5, spec) == GiveUp(6)
