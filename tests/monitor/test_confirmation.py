"""SPEC §2, from polls to states: down after 3 failures, up after 2 successes, dated at the run's first poll."""

from __future__ import annotations

import pytest

from monitor.confirmation import ConfirmationSettings, Confirmer
from monitor.engine import ChannelState
from monitor.events import NodeState, PollEvent, StateEvent
from tests.monitor.builders import ack, engine, poll, polls, pos, t, tree, unknown, up


def feed(c: Confirmer, events: list[PollEvent], current: NodeState = NodeState.UP) -> list[StateEvent | None]:
    out = []
    for e in events:
        r = c.observe(e, current)
        if r is not None:
            current = r.state
        out.append(r)
    return out


def test_down_after_three_failures_dated_at_the_first_known_at_the_third() -> None:
    c = Confirmer()
    got = feed(c, polls("CPE-1", t(10), 3, ok=False))
    assert got[:2] == [None, None]
    assert got[2] == StateEvent(at=t(10, 0), node="CPE-1", state=NodeState.DOWN, known_at=t(10, 2))
    assert got[2].known == t(10, 2)


def test_up_after_two_successes() -> None:
    c = Confirmer()
    got = feed(c, [*polls("CPE-1", t(10), 3, ok=False), *polls("CPE-1", t(10, 5), 2, ok=True)])
    assert got[3] is None
    assert got[4] == StateEvent(at=t(10, 5), node="CPE-1", state=NodeState.UP, known_at=t(10, 6))


def test_a_success_breaks_a_run_of_failures() -> None:
    # fail 10:00, 10:01, ok 10:02, fail 10:03, 10:04, 10:05: the down is dated 10:03 (first of the run of 3)
    c = Confirmer()
    seq = [*polls("N", t(10), 2, ok=False), poll("N", t(10, 2)), *polls("N", t(10, 3), 3, ok=False)]
    got = feed(c, seq)
    assert [g for g in got if g is not None] == [
        StateEvent(at=t(10, 3), node="N", state=NodeState.DOWN, known_at=t(10, 5))
    ]


def test_duplicate_and_stale_polls_are_ignored() -> None:
    # fail 10:01, fail 10:02, then 10:01 again (stale) and 10:02 again (duplicate), a stale success at 10:00:
    # none of them counts or breaks the run; the third failure at 10:03 confirms, dated 10:01.
    c = Confirmer()
    seq = [
        poll("N", t(10, 1), False),
        poll("N", t(10, 2), False),
        poll("N", t(10, 1), False),
        poll("N", t(10, 2), False),
        poll("N", t(10, 0), True),
    ]
    assert feed(c, seq) == [None] * 5
    assert c.runs["N"].count == 2
    assert c.observe(poll("N", t(10, 3), False), NodeState.UP) == StateEvent(
        at=t(10, 1), node="N", state=NodeState.DOWN, known_at=t(10, 3)
    )


def test_no_event_when_the_state_is_already_confirmed() -> None:
    c = Confirmer()
    got = feed(c, polls("N", t(10), 6, ok=False))
    assert [g is not None for g in got] == [False, False, True, False, False, False]
    assert feed(Confirmer(), polls("N", t(10), 5, ok=True)) == [None] * 5  # up is the replay's start


def test_settings_are_at_least_one() -> None:
    with pytest.raises(ValueError):
        ConfirmationSettings(down_after=0)
    c = Confirmer(ConfirmationSettings(down_after=1, up_after=1))
    assert c.observe(poll("N", t(10), False), NodeState.UP) == StateEvent(
        at=t(10), node="N", state=NodeState.DOWN, known_at=t(10)
    )


def test_engine_dates_the_change_at_the_first_poll_and_knows_it_at_the_third() -> None:
    """An ack at 10:01 arrives before the confirmation (10:02): it finds no incident. One at 10:02 does."""
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    eng.replay([poll("CPE-1", t(10, 0), False), poll("CPE-1", t(10, 1), False), ack("CPE-1", t(10, 1))])
    assert eng.open_incidents() == []
    assert [u.event for u in eng.unmatched] == [ack("CPE-1", t(10, 1))]
    eng.replay([poll("CPE-1", t(10, 2), False), ack("CPE-1", t(10, 2), by="second")])
    (inc,) = eng.open_incidents()
    assert inc.id == "CPE-1@2026-10-03T10:00:00Z" and inc.start == t(10, 0)
    assert inc.ack == t(10, 2) and inc.ack_by == "second"
    assert eng.transitions[pos(inv, "CPE-1.1")] == [(t(10, 0), ChannelState.OFFLINE)]
    assert eng.node_history["CPE-1"] == [(t(10), NodeState.DOWN)]  # dated at the first poll of the run
    # back up: ok at 10:30, 10:31 -> up dated 10:30
    eng.replay(polls("CPE-1", t(10, 30), 2, ok=True))
    h = eng.snapshot(t(11))
    assert h.incidents[0].end == t(10, 30)


def test_unknown_needs_the_same_runs_counted_after_it() -> None:
    """A node the monitor stopped seeing (unknown at 10:05) needs 2 fresh successes to be up again.

    Successes before it went unknown do not count: otherwise the blind time would vanish (the up would be
    dated before the unknown). Reading chosen: the run is broken when the node becomes unknown.
    """
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    ch = pos(inv, "CPE-1.1")
    eng.replay(polls("CPE-1", t(10), 4, ok=True))  # 10:00..10:03 ok, the node is up
    eng.replay([unknown("CPE-1", t(10, 5))])
    eng.replay([poll("CPE-1", t(10, 20))])  # one success: still unknown
    assert eng.state[ch] is ChannelState.UNKNOWN
    eng.replay([poll("CPE-1", t(10, 21))])  # the second: up, dated at 10:20
    assert eng.state[ch] is ChannelState.ONLINE
    assert eng.transitions[ch] == [(t(10, 5), ChannelState.UNKNOWN), (t(10, 20), ChannelState.ONLINE)]


def test_unknown_to_down_needs_three_failures() -> None:
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    ch = pos(inv, "CPE-1.1")
    eng.replay(polls("CPE-1", t(10), 2, ok=False))  # two failures, not yet down
    eng.replay([unknown("CPE-1", t(10, 5))])
    eng.replay(polls("CPE-1", t(10, 10), 2, ok=False))
    assert eng.state[ch] is ChannelState.UNKNOWN
    eng.replay([poll("CPE-1", t(10, 12), False)])
    assert eng.transitions[ch] == [(t(10, 5), ChannelState.UNKNOWN), (t(10, 10), ChannelState.OFFLINE)]
    assert eng.open_incidents()[0].start == t(10, 10)


def test_polls_of_a_node_outside_the_inventory_are_unmatched() -> None:
    eng = engine(tree("T1/CPE-1:cam"))
    eng.replay(polls("CPE-9", t(10), 3, ok=False))
    assert len(eng.unmatched) == 3 and eng.incidents == []


def test_a_stale_poll_is_reported_not_applied_with_its_reason() -> None:
    """SPEC R7: a poll dated at or before the node's last applied poll is not applied, and says why."""
    eng = engine(tree("T1/CPE-1:cam"))
    eng.replay(polls("CPE-1", t(10), 2, ok=False))  # 10:00, 10:01 failed
    eng.apply_instant(t(10, 2), [PollEvent(at=t(9, 30), node="CPE-1", ok=False, known_at=t(10, 2))])
    (u,) = eng.unmatched
    assert u.event.at == t(9, 30) and "not after the last applied poll" in u.reason and "10:01:00Z" in u.reason
    assert eng.open_incidents() == []  # the stale failure did not count towards the run of 3
    eng.replay([poll("CPE-1", t(10, 3), False)])
    assert eng.open_incidents()[0].start == t(10)


def test_a_given_state_interrupts_the_run_of_polls() -> None:
    """SPEC R7: any ``state`` event for a node (not only unknown) interrupts its confirmation run."""
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    ch = pos(inv, "CPE-1.1")
    eng.replay(polls("CPE-1", t(10), 2, ok=False))  # two failures of three
    eng.replay([up("CPE-1", t(10, 2))])  # a state given by someone else: the run starts again
    eng.replay([poll("CPE-1", t(10, 3), False)])  # one failure of a fresh run: still up
    assert eng.state[ch] is ChannelState.ONLINE
    eng.replay(polls("CPE-1", t(10, 4), 2, ok=False))  # 10:03, 10:04, 10:05: down dated 10:03
    assert eng.transitions[ch] == [(t(10, 3), ChannelState.OFFLINE)]
