from datetime import UTC, datetime

import pytest

from jobplane.controllers.cronjob import schedule as sched


def dt(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_five_fields_and_macros() -> None:
    s = sched.parse("*/5 * * * *")
    assert s.next(dt(2024, 1, 1, 0, 3)) == dt(2024, 1, 1, 0, 5)
    assert sched.parse("@hourly").next(dt(2024, 1, 1, 0, 3)) == dt(2024, 1, 1, 1, 0)
    assert sched.parse("@daily").next(dt(2024, 1, 1, 0, 3)) == dt(2024, 1, 2)
    assert sched.parse("@weekly").next(dt(2024, 1, 1)) == dt(2024, 1, 7)  # a Sunday
    assert sched.parse("@monthly").next(dt(2024, 1, 15)) == dt(2024, 2, 1)
    assert sched.parse("@yearly").next(dt(2024, 1, 15)) == dt(2025, 1, 1)
    assert sched.parse("0 0 * * ?").next(dt(2024, 1, 1, 5)) == dt(2024, 1, 2)


def test_every_duration() -> None:
    assert sched.parse("@every 1h30m").next(dt(2024, 1, 1)) == dt(2024, 1, 1, 1, 30)


def test_bad_schedules() -> None:
    with pytest.raises(sched.ScheduleError, match=r"expected exactly 5 fields, found 4: \[\* \* \* \*\]"):
        sched.parse("* * * *")
    with pytest.raises(sched.ScheduleError):
        sched.parse("@fortnightly")
    with pytest.raises(sched.ScheduleError):
        sched.parse("61 * * * *")


def test_time_zone() -> None:
    s = sched.parse("0 9 * * *", "Asia/Seoul")
    assert s.next(dt(2024, 1, 1)) == dt(2024, 1, 2, 0, 0)  # 09:00 KST is 00:00 UTC
    with pytest.raises(sched.ScheduleError, match="unknown time zone Mars/Base"):
        sched.parse("0 9 * * *", "Mars/Base")


def test_most_recent_none_before_first_activation() -> None:
    s = sched.parse("*/10 * * * *")
    r = sched.most_recent_schedule_time(s, dt(2024, 1, 1, 0, 9), dt(2024, 1, 1, 0, 1))
    assert r.most_recent is None


def test_most_recent_single_and_many_missed() -> None:
    s = sched.parse("*/1 * * * *")
    r = sched.most_recent_schedule_time(s, dt(2024, 1, 1, 0, 1, 30), dt(2024, 1, 1, 0, 0, 10))
    assert r.most_recent == dt(2024, 1, 1, 0, 1) and not r.too_many
    r = sched.most_recent_schedule_time(s, dt(2024, 1, 1, 0, 50, 30), dt(2024, 1, 1))
    assert r.most_recent == dt(2024, 1, 1, 0, 50) and not r.too_many
    r = sched.most_recent_schedule_time(s, dt(2024, 1, 2, 0, 0, 30), dt(2024, 1, 1))
    assert r.most_recent == dt(2024, 1, 2) and r.too_many


def test_most_recent_irregular_months() -> None:
    s = sched.parse("0 0 1 * *")
    r = sched.most_recent_schedule_time(s, dt(2024, 5, 20), dt(2023, 12, 15))
    assert r.most_recent == dt(2024, 5, 1)


def test_job_name_is_minutes_since_epoch() -> None:
    assert sched.job_name("hello", dt(2024, 1, 1, 0, 1)) == "hello-28401121"
