"""Time limits that fire on any thread and inside worker processes (mdrl.verify.timeout), and the math
verifier on answers built to hang sympy."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mdrl import compute_score
from mdrl.domains.math import MathConfig, MathVerifier
from mdrl.verify.timeout import CallTimeout, HelperConfig, HelperError, TimeLimiter

LIMITER = TimeLimiter()
#: A big-integer power: C code that a signal handler cannot interrupt (9**387420489 has 370M digits).
BIG_POWER = (pow, 9, 9**9)
QUICK = MathVerifier(MathConfig(timeout_s=1.0))


def _answer(expr: str) -> str:
    return f"</think>\n<answer> \\boxed{{{expr}}} </answer>"


def _sleep_with_limit(seconds: float) -> str:
    """Runs in a worker process: guard a call there, as a reward worker would."""
    try:
        TimeLimiter().call(time.sleep, seconds, timeout_s=0.5)
    except CallTimeout:
        return "timeout"
    return "finished"


def _score_huge_power(_: int) -> tuple[str, float]:
    started = time.monotonic()
    verdict = QUICK(_answer("9^{9^{9^{9}}}"), "5", None)
    return verdict.reason, time.monotonic() - started


def test_timeout_is_a_base_exception() -> None:
    assert issubclass(CallTimeout, BaseException) and not issubclass(CallTimeout, Exception)


def test_results_and_exceptions_come_back() -> None:
    assert LIMITER.call(pow, 2, 10, timeout_s=5) == 1024
    assert LIMITER.call(sorted, [3, 1, 2], reverse=True, timeout_s=5) == [3, 2, 1]
    with pytest.raises(ValueError, match="invalid literal"):
        LIMITER.call(int, "x", timeout_s=5)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):  # a lambda cannot travel
        LIMITER.call(lambda: 1, timeout_s=5)
    assert LIMITER.call(abs, -3, timeout_s=5) == 3


def test_timeout_stops_c_level_work_and_except_exception_cannot_swallow_it() -> None:
    LIMITER.warm_up()
    started = time.monotonic()
    with pytest.raises(CallTimeout):
        try:
            LIMITER.call(*BIG_POWER, timeout_s=0.5)
        except Exception:  # noqa: BLE001  (what most verifier code wraps calls in)
            pytest.fail("CallTimeout was caught by `except Exception`")
    assert time.monotonic() - started < 3.0
    assert LIMITER.call(pow, 2, 5, timeout_s=10) == 32  # the replacement helper serves the next call


def test_timeout_fires_in_thread_pool_workers() -> None:
    def guarded(seconds: float) -> str:
        try:
            LIMITER.call(time.sleep, seconds, timeout_s=0.5)
        except CallTimeout:
            return "timeout"
        return "finished"

    with ThreadPoolExecutor(max_workers=3) as pool:
        started = time.monotonic()
        results = list(pool.map(guarded, [30, 30, 30, 0.01]))
    assert results == ["timeout", "timeout", "timeout", "finished"]
    assert time.monotonic() - started < 20  # helpers start in parallel; nobody waits 30 s


def test_thread_helpers_stop_with_their_threads() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        pids = set(pool.map(lambda _: LIMITER.call(os.getpid, timeout_s=30), range(4)))
    assert pids and os.getpid() not in pids
    deadline = time.monotonic() + 10
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        gc.collect()
        alive = {pid for pid in alive if _exists(pid)}
        time.sleep(0.05)
    assert not alive, f"helper processes left behind: {alive}"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("method", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_timeout_fires_in_multiprocessing_pool_workers(method: str) -> None:
    # Pool workers are daemonic: multiprocessing would refuse to start a helper from them.
    LIMITER.warm_up()  # the parent already has a helper when it forks: the child must not share it
    with multiprocessing.get_context(method).Pool(2) as pool:
        assert pool.map(_sleep_with_limit, [30, 0.01]) == ["timeout", "finished"]
    assert LIMITER.call(pow, 3, 2, timeout_s=10) == 9  # the parent's helper still answers


def test_a_dying_helper_is_an_error_not_a_hang() -> None:
    with pytest.raises(HelperError):
        LIMITER.call(os._exit, 3, timeout_s=10)
    assert LIMITER.call(pow, 2, 3, timeout_s=10) == 8


def test_memory_limit_turns_a_memory_bomb_into_memory_error() -> None:
    limiter = TimeLimiter(HelperConfig(memory_limit_mb=1024))
    with pytest.raises(MemoryError):
        limiter.call(bytearray, 8 * 1024**3, timeout_s=30)
    limiter.close()


def test_invalid_timeout_is_rejected() -> None:
    with pytest.raises(ValueError):
        LIMITER.call(abs, 1, timeout_s=0)


# --- the math verifier on answers built to hang it ---------------------------------------------------------

def test_power_tower_times_out_quickly() -> None:
    QUICK("</think><answer>\\boxed{1}</answer>", "2", None)  # start the helper outside the timed part
    reason, elapsed = _score_huge_power(0)
    assert reason == "timeout"
    assert elapsed < 4.0


def test_power_tower_times_out_in_a_thread() -> None:
    # math-verify's own signal.alarm timeout raises ValueError off the main thread; ours fires
    with ThreadPoolExecutor(max_workers=1) as pool:
        reason, _ = pool.submit(_score_huge_power, 0).result()
    assert reason == "timeout"


def test_power_tower_times_out_in_a_worker_process() -> None:
    with multiprocessing.get_context("fork").Pool(1) as pool:
        reason, _ = pool.apply(_score_huge_power, (0,))
    assert reason == "timeout"


@pytest.mark.parametrize(
    "response,reasons",
    [
        (_answer("(" * 10_000 + "1" + ")" * 10_000), {"answer too long"}),
        (_answer("x" + "+x" * 20_000), {"answer too long"}),
        ("<answer>" + "\\boxed{1}" * 300_000 + "</answer>", {"not equivalent"}),  # 2.7 MB: the last box counts
        ("9" * 3_000_000, {"no <answer> tag"}),
        ("\\boxed{" * 100_000, {"unclosed \\boxed{}"}),
    ],
)
def test_huge_answers_are_rejected_fast(response: str, reasons: set[str]) -> None:
    started = time.monotonic()
    result = compute_score("deepscaler", response, "2")
    assert not result["acc"] and result["reason"] in reasons, result["reason"]
    assert time.monotonic() - started < 3.0


def test_deep_nesting_within_the_length_limit_times_out() -> None:
    roomy = MathVerifier(MathConfig(timeout_s=1.0, max_answer_chars=100_000))
    roomy(_answer("1"), "1", None)
    started = time.monotonic()
    verdict = roomy(_answer("(" * 10_000 + "1" + ")" * 10_000), "1", None)
    assert verdict.reason in {"timeout", "unparseable answer"} and not verdict.acc
    assert time.monotonic() - started < 4.0
