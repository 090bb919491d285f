"""A bounded load test on 127.0.0.1: a real `chatforge serve` at 0.5x, 1x, 2x and 4x its
measured capacity. Only 200s and 429s (with Retry-After) come back; the queue bounds latency;
memory returns to its baseline; 100 clients that hang up mid-stream leave no slot taken."""

from __future__ import annotations

import pytest
import trials


def check(report: trials.LoadReport) -> None:
    assert report.capacity_rps > 1, report
    for level in report.levels:
        assert level.other == {}, level  # nothing but 200 and 429
        assert level.rejected_without_retry_after == 0, level
        assert level.ok > 0, level
    below, above = report.levels[0], report.levels[-1]
    assert below.rejected <= 0.05 * below.sent, below  # at half the capacity almost everyone is served
    assert above.rejected > 0.3 * above.sent, above  # at 4x the excess is refused at once...
    # ...while the server keeps working. Not at full capacity on a 2-core machine where the load
    # generator shares the cores with the server: 0.4-1.1 of it measured here (the report prints it)
    assert above.goodput_rps > 0.3 * report.capacity_rps, above
    assert above.p99_ms < 20 * below.p50_ms + 2000, (below, above)  # and the queue bounds the wait
    assert report.dropped_streams >= 90, report
    assert report.active_after_drops == 0 and report.waiting_after_drops == 0, report
    assert report.rss_after_mb < report.rss_baseline_mb + 60, report  # back to (near) the baseline


def test_load_at_multiples_of_capacity(tmp_path):
    check(trials.load_trial(tmp_path, seconds=4.0))


@pytest.mark.slow
def test_load_longer(tmp_path):
    check(trials.load_trial(tmp_path, seconds=20.0))
