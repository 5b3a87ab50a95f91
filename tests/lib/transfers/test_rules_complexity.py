"""Include-pattern matching without backtracking (issue 21 item 6): a pattern of many "*"s costs time
linear in the path, where the regex it replaced took 24 s on one path while holding the transfer lock."""

import time

from genolake_assets.lib.transfers.rules import matches

HOSTILE = "/*a*a*a*a*a*a*a*a*a*a*Z"  # 23 characters


def _best_seconds(path: str, patterns: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            assert not matches(path, patterns)
        best = min(best, time.perf_counter() - started)
    return best


def test_a_pattern_of_many_stars_takes_time_linear_in_the_path():
    assert len(HOSTILE) == 23
    # Many "/"s: every folder boundary is a place the pattern could end (a folder include covers its
    # contents), the worst case for the matcher.
    small, large = "/" + "a/" * 2_000, "/" + "a/" * 8_000
    small_seconds = _best_seconds(small, [HOSTILE], 20)
    large_seconds = _best_seconds(large, [HOSTILE], 20)
    # Linear: about 4 times; quadratic would be 16, the old regex never finishes at these sizes.
    assert large_seconds < 10 * small_seconds + 0.005, (small_seconds, large_seconds)


def test_stars_still_match_what_datasync_would_take():
    assert matches("/a" + "a" * 1_000 + "Z", [HOSTILE])
    assert matches("/aaaaaaaaaaZ/child/file", [HOSTILE])  # a folder include covers its contents
    assert not matches("/aaaaaaaaaZ", [HOSTILE])  # one "a" short
    assert not matches("/aaaaaaaaaaZx", [HOSTILE])
    assert matches("/MiSeq/Output/231014_run/x", ["/MiSeq/Output/231014_*"])
    assert matches("/x/y", ["/"]) and matches("/x/y", ["/*"]) and matches("/x/y", ["/x*y"])
    assert matches("/xy/z", ["/x*z*"]) and not matches("/yx/z", ["/x*z*"])  # "*" matches "/" too
