"""The live service's answer log (``monitor.live.AnswerLog``): a reader gets what was answered since its mark,
each reader its own, and the log stays bounded."""

from __future__ import annotations

from monitor.live import AnswerLog


def test_each_reader_gets_what_is_new_since_its_mark() -> None:
    log = AnswerLog()
    mark, first = log.since(0)
    assert (mark, first) == (0, [])
    for node in ("A", "B", "A"):
        log.add(node)
    mark, got = log.since(0)
    assert (mark, got) == (3, ["A", "B", "A"])
    log.add("C")
    assert log.since(mark) == (4, ["C"])
    assert log.since(4) == (4, [])
    assert log.since(1) == (4, ["B", "A", "C"])  # another reader, further behind


def test_the_log_is_bounded_and_a_reader_far_behind_gets_what_is_kept() -> None:
    log = AnswerLog(keep=4)
    for i in range(5):  # the fifth drops the older half (A0, A1)
        log.add(f"A{i}")
    assert log.since(0) == (5, ["A2", "A3", "A4"])
    assert log.since(3) == (5, ["A3", "A4"])
    for i in range(5, 40):
        log.add(f"A{i}")
    mark, kept = log.since(0)
    assert mark == 40 and kept[-1] == "A39" and len(kept) <= 4
