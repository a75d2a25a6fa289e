"""The offset tracker: what may be committed when (event, hook) pairs finish out of order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.engine.tracker import OffsetTracker, PartitionTracker


def test_nothing_is_committable_before_any_pair_finishes() -> None:
    tracker = PartitionTracker()
    tracker.add(10, 2)
    tracker.add(11, 1)

    assert tracker.advance() is None
    assert tracker.committed is None
    assert tracker.pending == 2


def test_a_later_offset_finishing_first_does_not_move_the_commit_position() -> None:
    tracker = PartitionTracker()
    tracker.add(10, 1)
    tracker.add(11, 1)
    tracker.finish(11)

    assert tracker.advance() is None
    tracker.finish(10)
    assert tracker.advance() == 12
    assert tracker.committed == 12
    assert tracker.pending == 0


def test_the_commit_position_stops_before_the_first_unfinished_offset() -> None:
    tracker = PartitionTracker()
    for offset in (5, 6, 7, 8):
        tracker.add(offset, 1)
    for offset in (5, 6, 8):
        tracker.finish(offset)

    assert tracker.advance() == 7
    assert tracker.pending == 2
    assert 7 in tracker
    assert 5 not in tracker


def test_an_offset_is_finished_only_when_all_its_pairs_are() -> None:
    tracker = PartitionTracker()
    tracker.add(3, 3)
    tracker.finish(3)
    tracker.finish(3)

    assert tracker.advance() is None
    tracker.finish(3)
    assert tracker.advance() == 4


def test_an_offset_with_zero_pairs_is_committable_at_once() -> None:
    tracker = PartitionTracker()
    tracker.add(0, 0)
    tracker.add(1, 0)

    assert tracker.advance() == 2
    assert tracker.pending == 0


def test_a_zero_pair_offset_waits_behind_an_unfinished_lower_offset() -> None:
    tracker = PartitionTracker()
    tracker.add(0, 1)
    tracker.add(1, 0)

    assert tracker.advance() is None
    tracker.finish(0)
    assert tracker.advance() == 2


def test_gaps_in_offsets_commit_past_the_highest_finished_offset() -> None:
    tracker = PartitionTracker()
    tracker.add(10, 1)
    tracker.add(15, 1)  # compaction or transaction markers leave gaps
    tracker.finish(10)
    tracker.finish(15)

    assert tracker.advance() == 16


def test_advance_reports_only_when_the_position_moved() -> None:
    tracker = PartitionTracker()
    tracker.add(0, 1)
    tracker.finish(0)

    assert tracker.advance() == 1
    assert tracker.advance() is None
    assert tracker.committed == 1


def test_extra_and_unknown_completions_are_ignored() -> None:
    tracker = PartitionTracker()
    tracker.add(0, 1)
    tracker.add(1, 1)
    tracker.finish(0)
    tracker.finish(0)  # a duplicate acknowledgement must not finish offset 1's pair
    tracker.finish(99)

    assert tracker.advance() == 1
    assert 1 in tracker
    assert tracker.pending == 1


@pytest.mark.parametrize("offset", [4, 5])
def test_an_offset_at_or_below_the_last_added_is_refused(offset: int) -> None:
    tracker = PartitionTracker()
    tracker.add(5, 1)

    with pytest.raises(ValueError, match="out of order"):
        tracker.add(offset, 1)


def test_partitions_are_tracked_independently() -> None:
    tracker = OffsetTracker()
    tracker.add("a", 0, 0, 1)
    tracker.add("a", 1, 0, 1)
    tracker.add("b", 0, 7, 1)
    tracker.finish("a", 1, 0)
    tracker.finish("b", 0, 7)

    assert tracker.advance() == {("a", 1): 1, ("b", 0): 8}
    assert tracker.pending("a", 0) == 1
    assert tracker.pending("a", 1) == 0
    assert tracker.total_pending() == 1
    assert tracker.advance() == {}


def test_a_dropped_partition_ignores_later_completions_and_reports_nothing() -> None:
    tracker = OffsetTracker()
    tracker.add("t", 0, 0, 1)
    tracker.add("t", 1, 0, 1)
    tracker.drop("t", 0)
    tracker.finish("t", 0, 0)
    tracker.finish("t", 1, 0)

    assert tracker.advance() == {("t", 1): 1}
    assert tracker.partitions() == [("t", 1)]
    assert tracker.pending("t", 0) == 0


def test_a_reassigned_partition_starts_from_a_fresh_tracker() -> None:
    tracker = OffsetTracker()
    tracker.add("t", 0, 50, 1)
    tracker.drop("t", 0)
    tracker.add("t", 0, 40, 1)  # re-consumed from the last commit: lower than before
    tracker.finish("t", 0, 40)

    assert tracker.advance() == {("t", 0): 41}


def test_pending_counts_offsets_not_pairs() -> None:
    tracker = OffsetTracker()
    tracker.add("t", 0, 0, 3)
    tracker.add("t", 0, 1, 2)
    tracker.add("t", 2, 0, 0)

    assert tracker.pending("t", 0) == 2
    assert tracker.total_pending() == 3
    assert tracker.pending("unknown", 0) == 0


def test_a_bundle_weighs_in_the_window_as_the_records_it_replaces_until_committable() -> None:
    tracker = OffsetTracker()
    tracker.add("t", 0, 0, 1)
    tracker.add("t", 0, 1, 300, weight=300)  # a tier bundle of 300 pairs
    tracker.add("t", 0, 2, 0, weight=0)  # an empty one still counts once until it is committed

    assert tracker.pending("t", 0) == 302
    tracker.finish("t", 0, 0)
    assert tracker.advance() == {("t", 0): 1}
    assert tracker.pending("t", 0) == 301
    for _ in range(300):
        tracker.finish("t", 0, 1)
    assert tracker.advance() == {("t", 0): 3}
    assert tracker.pending("t", 0) == 0
    assert tracker.total_pending() == 0


@st.composite
def partitions(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[int]]:
    """Offsets (increasing, with gaps) with their pair counts, and one order of finishing."""
    gaps = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=25))
    counts = draw(st.lists(st.integers(0, 3), min_size=len(gaps), max_size=len(gaps)))
    offsets, offset = [], draw(st.integers(0, 1000))
    for gap in gaps:
        offset += gap
        offsets.append(offset)
    completions = [o for o, n in zip(offsets, counts, strict=True) for _ in range(n)]
    return list(zip(offsets, counts, strict=True)), draw(st.permutations(completions))


@settings(deadline=None, max_examples=200)
@given(partitions())
def test_the_commit_position_never_passes_an_unfinished_offset_and_ends_after_the_last(
    case: tuple[list[tuple[int, int]], list[int]],
) -> None:
    entries, order = case
    tracker = PartitionTracker()
    left = {}
    for offset, count in entries:
        tracker.add(offset, count)
        left[offset] = count
    positions = []

    def check() -> None:
        position = tracker.advance()
        if position is None:
            return
        positions.append(position)
        unfinished = [o for o, n in left.items() if n > 0]
        assert not unfinished or position <= min(unfinished)
        assert position - 1 in left
        assert all(left[o] == 0 for o in left if o < position)

    check()
    for offset in order:
        tracker.finish(offset)
        left[offset] -= 1
        check()

    assert positions == sorted(set(positions))
    assert tracker.committed == entries[-1][0] + 1
    assert tracker.pending == 0


def test_a_completion_from_before_a_revoke_does_not_count_for_the_record_taken_in_again() -> None:
    tracker = OffsetTracker()
    before, again = object(), object()  # the record as consumed before and after the revoke
    tracker.add("t", 0, 10, 2, before)
    tracker.drop("t", 0)  # revoked, then assigned back: consumed again from offset 10
    tracker.add("t", 0, 10, 2, again)
    tracker.finish("t", 0, 10, before)  # a late acknowledgement of a pair from before
    tracker.finish("t", 0, 10, again)
    assert tracker.advance() == {}  # one of the two pairs taken in again is still running
    tracker.finish("t", 0, 10, again)
    assert tracker.advance() == {("t", 0): 11}


def test_a_partitions_generation_ends_with_its_drop_and_a_new_one_starts_when_it_is_back() -> None:
    tracker = OffsetTracker()
    tracker.add("t", 0, 5, 1)
    first = tracker.generation("t", 0)
    assert first is not None
    assert tracker.generation("t", 0) is first

    tracker.drop("t", 0)
    assert tracker.generation("t", 0) is None
    tracker.add("t", 0, 5, 1)
    assert tracker.generation("t", 0) not in (None, first)
