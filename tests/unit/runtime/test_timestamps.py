"""maestro.runtime.timestamps.timestamp agrees with Timestamp.FromDatetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from maestro.runtime.timestamps import timestamp

zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
)


def _reference(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), zones)
def test_same_as_from_datetime(value: datetime, zone: timezone | None) -> None:
    value = value.replace(tzinfo=zone)
    assert timestamp(value) == _reference(value)


def test_none_and_the_edges() -> None:
    assert timestamp(None) is None
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert timestamp(before_epoch) == _reference(before_epoch)
    too_early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # 0000-12-31 UTC
    with pytest.raises(OverflowError):
        _reference(too_early)
    with pytest.raises(OverflowError):  # FromDatetime's own error
        timestamp(too_early)
