"""CronJob validation (``ValidateCronJobCreate``/``ValidateCronJobUpdate``).

Schedules are checked with a port of robfig/cron v3 ``ParseStandard`` (five fields or a
descriptor, ``@every <duration>``) so the error texts are the ones kube-apiserver returns;
time zones with ``zoneinfo`` and Go's ``time.LoadLocation`` wording.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jobplane.api.errors import FieldError, invalid, not_supported, required
from jobplane.api.validation import gofmt
from jobplane.api.validation.job import job_spec_warnings, name_warnings, validate_job_spec_body
from jobplane.api.validation.metadata import nonnegative, validate_object_meta, validate_object_meta_update
from jobplane.api.validation.names import is_dns1123_subdomain

CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]
MAX_CRONJOB_NAME = 63 - 11
_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTHS = {m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                           "oct", "nov", "dec"])}
_DOW = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (min, max, names) for minute, hour, day of month, month, day of week.
_BOUNDS: tuple[tuple[int, int, dict[str, int] | None], ...] = (
    (0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DOW))
_ATOI_RE = re.compile(r"[+-]?[0-9]+")
_TZ_PART_RE = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


class CronError(ValueError):
    """A schedule robfig/cron would reject; ``str()`` is its message."""


def _atoi(expr: str) -> int:
    if not _ATOI_RE.fullmatch(expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    num = int(expr)
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None and expr.lower() in names:
        return names[expr.lower()]
    return _atoi(expr)


def _check_range(expr: str, lo: int, hi: int, names: dict[str, int] | None) -> None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = _int_or_name(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if single:
            end = hi
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < lo:
        raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")


def parse_go_duration(text: str) -> int:
    """Go ``time.ParseDuration`` -> nanoseconds; raises CronError with Go's message."""
    orig = text
    quoted = '"' + orig + '"'
    if text in ("0", "+0", "-0"):
        return 0
    if not text:
        raise CronError(f"time: invalid duration {quoted}")
    neg = text[0] == "-"
    if text[0] in "+-":
        text = text[1:]
    if not text:
        raise CronError(f"time: invalid duration {quoted}")
    total = 0.0
    while text:
        m = _DURATION_PART_RE.match(text)
        number, unit = (m.group(1), m.group(2)) if m else ("", "")
        if not number or number == ".":
            raise CronError(f"time: invalid duration {quoted}")
        if not unit:
            raise CronError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise CronError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _DURATION_UNITS[unit]
        text = text[m.end():]  # type: ignore[union-attr]
    return int(-total if neg else total)


def _load_location(name: str) -> str | None:
    """Go ``time.LoadLocation`` error text, or None when the zone exists."""
    if name in ("", "UTC"):
        return None
    if name == "Local":
        return None
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return f"unknown time zone {name}"
    return None


@lru_cache(maxsize=1024)
def parse_error(schedule: str) -> str | None:
    """robfig/cron v3 ``ParseStandard``: None when valid, else its error message."""
    try:
        _parse(schedule)
    except CronError as e:
        return str(e)
    return None


def _parse(spec: str) -> None:
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        i = spec.find(" ")
        eq = spec.find("=")
        loc = spec[eq + 1:i] if i >= 0 else spec[eq + 1:-1]
        err = _load_location(loc)
        if err:
            raise CronError(f"provided bad location {loc}: {err}")
        spec = spec[i:].strip() if i >= 0 else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return
        if spec.startswith("@every "):
            try:
                parse_go_duration(spec[len("@every "):])
            except CronError as e:
                raise CronError(f"failed to parse duration {spec}: {e}") from None
            return
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    for field, (lo, hi, names) in zip(fields, _BOUNDS, strict=True):
        for expr in field.split(","):
            _check_range(expr, lo, hi, names)


def validate_time_zone(tz: str | None, path: str) -> list[FieldError]:
    if tz is None:
        return []
    if tz == "":
        return [invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART_RE.fullmatch(part):
            return [invalid(path, tz, f"unknown time zone {tz}")]
    errs: list[FieldError] = []
    if tz.lower() == "local":
        errs.append(invalid(path, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
    err = _load_location(tz)
    if err:
        errs.append(invalid(path, tz, err))
    return errs


def _validate_spec(spec: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    schedule = spec.get("schedule") or ""
    tz = spec.get("timeZone")
    if not schedule:
        errs.append(required("spec.schedule"))
    else:
        msg = parse_error(schedule)
        if msg:
            errs.append(invalid("spec.schedule", schedule, msg))
        allow_tz = old is not None and "TZ" in (old.get("schedule") or "")
        if allow_tz and "TZ" in schedule and tz is not None:
            errs.append(invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in schedule:
            errs.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    if spec.get("startingDeadlineSeconds") is not None:
        errs.extend(nonnegative(spec["startingDeadlineSeconds"], "spec.startingDeadlineSeconds"))
    if old is None or old.get("timeZone") != tz:
        errs.extend(validate_time_zone(tz, "spec.timeZone"))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        errs.append(required("spec.concurrencyPolicy"))
    elif policy not in CONCURRENCY_POLICIES:
        errs.append(not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
    errs.extend(validate_job_template(spec.get("jobTemplate") or {}, "spec.jobTemplate"))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if spec.get(key) is not None:
            errs.extend(nonnegative(spec[key], f"spec.{key}"))
    return errs


def validate_job_template(jt: Mapping[str, Any], path: str) -> list[FieldError]:
    """``ValidateJobTemplateSpec``: the JobSpec rules, and the selector is always generated."""
    jspec = jt.get("spec") or {}
    errs = validate_job_spec_body(jspec, path + ".spec")
    if jspec.get("selector") is not None:
        errs.append(invalid(path + ".spec.selector", gofmt.label_selector(jspec["selector"]),
                            "`selector` will be auto-generated"))
    if jspec.get("manualSelector") is True:
        errs.append(not_supported(path + ".spec.manualSelector", True, ["nil", "false"]))
    return errs


def validate_cronjob(cj: Mapping[str, Any]) -> list[FieldError]:
    meta = cj.get("metadata") or {}
    errs = validate_object_meta(meta, True, is_dns1123_subdomain)
    errs.extend(_validate_spec(cj.get("spec") or {}, None))
    name = meta.get("name") or ""
    if len(name) > MAX_CRONJOB_NAME:
        errs.append(invalid("metadata.name", name, f"must be no more than {MAX_CRONJOB_NAME} characters"))
    return errs


def validate_cronjob_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(_validate_spec(new.get("spec") or {}, old.get("spec") or {}))
    return errs


def cronjob_warnings(cj: Mapping[str, Any]) -> list[str]:
    spec = cj.get("spec") or {}
    warnings = name_warnings((cj.get("metadata") or {}).get("name") or "")
    warnings.extend(job_spec_warnings((spec.get("jobTemplate") or {}).get("spec") or {}, "spec.jobTemplate.spec"))
    schedule = spec.get("schedule") or ""
    if "TZ" in schedule:
        warnings.append(f'cannot use TZ or CRON_TZ in schedule "{schedule}", use timeZone field instead')
    return warnings
