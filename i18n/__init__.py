"""Translatable messages and locale negotiation.

Code marks a message with `N_` where it is written (whole sentences, named placeholders)
and translates it late, with `translate`, in the locale of whoever reads it. Catalogs are
gettext files under `i18n/locale`, compiled by Babel (`make` does it).
"""

from __future__ import annotations

import functools
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "renshi"
SUPPORTED_LOCALES = ("en", "zh_Hans_CN")
DEFAULT_LOCALE = "en"


def N_(message: str) -> str:
    """Mark `message` for extraction without translating it yet."""
    return message


@functools.cache
def translations(locale: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [locale], domain=DOMAIN)


def translate(message: str, locale: str | None, **params: object) -> str:
    """Translate `message` into `locale` and fill its named placeholders."""
    text = translations(locale or DEFAULT_LOCALE).gettext(message)
    return text.format(**params) if params else text


def supported(locale: str | None) -> str | None:
    """The supported locale that best serves `locale` (e.g. zh-CN -> zh_Hans_CN), or None."""
    if not locale:
        return None
    try:
        parsed = Locale.parse(locale.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    for candidate in SUPPORTED_LOCALES:
        wanted = Locale.parse(candidate)
        if parsed.language == wanted.language and (
            parsed.language != "zh" or (parsed.script or "Hans") == wanted.script
        ):
            return candidate
    return None


def negotiate(
    user_locale: str | None, accept_language: str | None, tenant_locale: str | None
) -> str:
    """Pick the locale of a request: user preference, then Accept-Language, then tenant."""
    if chosen := supported(user_locale):
        return chosen
    for tag in _parse_accept_language(accept_language or ""):
        if chosen := supported(tag):
            return chosen
    return supported(tenant_locale) or DEFAULT_LOCALE


@functools.cache
def formatting_locale(user_locale: str | None, fallback: str) -> str:
    """The locale numbers and money are formatted in: the user's own when Babel knows it
    (ja_JP, de_DE...), translated messages or not; else `fallback`."""
    if user_locale:
        try:
            return str(Locale.parse(user_locale.replace("-", "_")))
        except (ValueError, TypeError, UnknownLocaleError):
            pass
    return fallback


def _parse_accept_language(header: str) -> list[str]:
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]
