from datetime import UTC, datetime, timedelta, timezone

from apps.core.times import isoformat_z


def test_a_moment_in_utc_ends_in_z_and_none_stays_none():
    assert isoformat_z(datetime(2026, 5, 1, 12, 0, tzinfo=UTC)) == "2026-05-01T12:00:00Z"
    assert isoformat_z(datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)).endswith(".250000Z")
    other = timezone(timedelta(hours=2))
    assert isoformat_z(datetime(2026, 5, 1, 14, 0, tzinfo=other)) == "2026-05-01T14:00:00+02:00"
    assert isoformat_z(None) is None
