"""Small validators shared by domain actions. Each raises `DomainError` naming the field."""

from __future__ import annotations

import re
import zoneinfo

from babel import Locale, UnknownLocaleError
from babel.core import get_global

from domain.errors import DomainError
from i18n import N_

_CONTROL = re.compile(r"[\x00-\x1f]")


def required_text(value: str | None, field: str, *, max_length: int = 200) -> str:
    text = (value or "").strip()
    if not text:
        raise DomainError(N_("This field is required."), field=field)
    if len(text) > max_length:
        raise DomainError(
            N_("At most {count} characters are allowed."), field=field, count=max_length
        )
    if _CONTROL.search(text):
        raise DomainError(N_("Control characters are not allowed."), field=field)
    return text


def optional_text(value: str | None, field: str, *, max_length: int = 200) -> str | None:
    if value is None or not value.strip():
        return None
    return required_text(value, field, max_length=max_length)


# CLDR knows some codes that are not countries: unknown, supranational and pseudo regions.
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})


def country_code(value: str, field: str = "country") -> str:
    code = (value or "").strip().upper()
    known = get_global("territory_currencies")
    if len(code) != 2 or not code.isalpha() or code in _NOT_COUNTRIES or code not in known:
        raise DomainError(N_("{value} is not an ISO 3166 country code."), field=field, value=value)
    return code


def time_zone(value: str, field: str = "timeZone") -> str:
    if value not in zoneinfo.available_timezones():
        raise DomainError(N_("{value} is not an IANA time zone."), field=field, value=value)
    return value


def locale_tag(value: str, field: str = "locale") -> str:
    try:
        return str(Locale.parse((value or "").replace("-", "_")))
    except (ValueError, TypeError, UnknownLocaleError) as exc:
        raise DomainError(N_("{value} is not a known locale."), field=field, value=value) from exc
