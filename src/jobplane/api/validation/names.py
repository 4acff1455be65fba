"""Name syntax checks (apimachinery ``util/validation``): each returns the list of upstream
messages, empty when valid, so callers wrap them in field errors exactly as upstream does."""

from __future__ import annotations

import re
from functools import lru_cache

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery ``RegexError`` (note the double space before each ``or``)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, ex in enumerate(examples):
        if i:
            msg += " or "
        msg += f"'{ex}', "
    return msg + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL_FMT)
DNS1123_LABEL_ERR = regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character", _LABEL_FMT, "my-name", "123-abc")

_SUBDOMAIN_FMT = _LABEL_FMT + "(\\." + _LABEL_FMT + ")*"
_SUBDOMAIN_RE = re.compile(_SUBDOMAIN_FMT)
DNS1123_SUBDOMAIN_ERR = regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character", _SUBDOMAIN_FMT, "example.com")

_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_RE = re.compile(_DNS1035_FMT)
DNS1035_LABEL_ERR = regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character", _DNS1035_FMT, "my-name", "abc-123")

_QNAME_CHAR_FMT = "[A-Za-z0-9]"
_QNAME_EXT_FMT = "[-A-Za-z0-9_.]"
_QNAME_FMT = f"({_QNAME_CHAR_FMT}{_QNAME_EXT_FMT}*)?{_QNAME_CHAR_FMT}"
_QNAME_RE = re.compile(_QNAME_FMT)
_QNAME_ERR = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
              "with an alphanumeric character")

_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
LABEL_VALUE_ERR = regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character", _LABEL_VALUE_FMT,
    "MyValue", "my_value", "12345")

_IANA_SVC_RE = re.compile("[-a-z0-9]+")
_HAS_LETTER_RE = re.compile("[a-z]")
_PRINTABLE_NO_EQ_RE = re.compile(r"[\x20-\x3c\x3e-\x7e]+")


@lru_cache(maxsize=8192)
def is_dns1123_label(value: str) -> tuple[str, ...]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _LABEL_RE.fullmatch(value):
        errs.append(DNS1123_LABEL_ERR)
    return tuple(errs)


@lru_cache(maxsize=8192)
def is_dns1123_subdomain(value: str) -> tuple[str, ...]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _SUBDOMAIN_RE.fullmatch(value):
        errs.append(DNS1123_SUBDOMAIN_ERR)
    return tuple(errs)


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1035_RE.fullmatch(value):
        errs.append(DNS1035_LABEL_ERR)
    return errs


@lru_cache(maxsize=8192)
def is_qualified_name(value: str) -> tuple[str, ...]:
    """``[prefix/]name``: label keys, annotation keys, finalizers, condition types."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return ("a qualified name " + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",)
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return tuple(errs)


@lru_cache(maxsize=8192)
def is_valid_label_value(value: str) -> tuple[str, ...]:
    errs = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(LABEL_VALUE_ERR)
    return tuple(errs)


def is_valid_port_name(value: str) -> list[str]:
    """IANA_SVC_NAME: 1-15 chars, lowercase alnum and '-', a letter, no '--' or edge hyphen."""
    errs = []
    if len(value) > 15:
        errs.append(max_len_error(15))
    if not _IANA_SVC_RE.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not _HAS_LETTER_RE.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_env_var_name(value: str) -> list[str]:
    """Relaxed environment variable names (GA in 1.34): printable ASCII other than '='."""
    if not _PRINTABLE_NO_EQ_RE.fullmatch(value):
        return ["a valid environment variable name must consist only of printable ASCII characters other than '='"]
    return []


HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(HTTP_PATH_FMT)


def domain_prefixed_path_errors(value: str) -> list[tuple[str, str]]:
    """``IsDomainPrefixedPath`` (``acme.io/foo``) as (bad value, message) pairs; ('', '') means Required."""
    if not value:
        return [("", "")]
    segments = value.split("/", 1)
    if len(segments) != 2 or not segments[0] or not segments[1]:
        return [(value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    host, path = segments
    errs = [(host, m) for m in is_dns1123_subdomain(host)]
    if not _HTTP_PATH_RE.fullmatch(path):
        errs.append((path, regex_error("Invalid path", HTTP_PATH_FMT)))
    return errs


def is_path_segment_name(value: str) -> list[str]:
    """apiserver ``IsValidPathSegmentName``: every name must fit in a URL path segment."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    errs = []
    for ch in ("/", "%"):
        if ch in value:
            errs.append(f"may not contain '{ch}'")
    return errs
