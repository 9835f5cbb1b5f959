"""The public site's languages (Flask-Babel).

Which language a public answer is in: ``?lang=<code>`` when it names one of
``TATTLETALE_LANGUAGES``, else the best match of the browser's Accept-Language among
them, else the first of them. Staff pages and the staff API are English only: their
requests always get the default locale, so a message shared by a service reads the
same to staff as before.

The choice is remembered without a cookie (public pages set none until a form needs
its CSRF token, portal/http/headers.py): a page reached with ``?lang=`` carries it on
every public link it renders (:func:`_carry_language`), forms' actions included. An
answer that took its language from Accept-Language says so in ``Vary``, so a cache
never hands a Spanish reader the English page it kept (or its ETag).

Translations: portal/translations/<code>/LC_MESSAGES/messages.po, extracted with
babel.cfg (``make translations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from babel import Locale
from flask import Flask, current_app, g, has_request_context, request, url_for
from flask_babel import Babel
from werkzeug.wrappers import Response as BaseResponse

from config import PROJECT_ROOT, ConfigError
from portal.http.edge import Audience, request_audience

TRANSLATIONS = PROJECT_ROOT / "portal" / "translations"
LANG_PARAMETER = "lang"
# Public endpoints whose URLs never carry the language: media bytes are the same in
# every language, and one URL per rendition keeps caches and Range requests simple.
_LANGUAGE_FREE_ENDPOINTS = frozenset({"public.appeal_media"})

babel = Babel()


def languages() -> tuple[str, ...]:
    return tuple(current_app.config["TATTLETALE"].languages)


def _language_in_url() -> str | None:
    try:
        asked = request.args.get(LANG_PARAMETER, "").replace("-", "_")
    except UnicodeDecodeError:
        # A query string that is not UTF-8: refused as a 400 by portal/http/errors.py
        # (this hook runs before that one), in the browser's language meanwhile.
        return None
    return asked if asked in languages() else None


def select_locale() -> str:
    """Flask-Babel's locale selector, called at most once per request (cached)."""
    offered = languages()
    if not has_request_context():
        return offered[0]  # a job or a shell: mails to tipsters force their language
    if request_audience() is not Audience.PUBLIC:
        return "en"  # staff pages and the staff API are English only
    if (asked := _language_in_url()) is not None:
        return asked
    g.language_from_header = True
    best = request.accept_languages.best_match([code.replace("_", "-") for code in offered])
    return best.replace("-", "_") if best else offered[0]


def current_language() -> str:
    """The language of this page, as ``<html lang>`` wants it (``pt-BR``)."""
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale).replace("_", "-") if locale is not None else "en"


@dataclass(frozen=True)
class LanguageLink:
    code: str  # BCP 47, for hreflang and lang
    name: str  # in its own language: a reader looks for the one they can read
    url: str
    current: bool


def _page_url(code: str) -> str:
    """This page again in ``code``; the start page for a request that matched no page."""
    endpoint = request.endpoint or "public.index"
    values: dict[str, Any] = {}
    if request.url_rule is None:
        endpoint = "public.index"
    else:
        values.update(request.view_args or {})
        values.update((k, v) for k, v in request.args.items() if k != LANG_PARAMETER)
    values[LANG_PARAMETER] = code
    return url_for(endpoint, **values)


def language_links() -> list[LanguageLink]:
    """The switch to the other languages of this page. None on the answer to a form
    (a receipt shown once, a form shown again with what was typed): a link can only
    GET the page afresh, which would lose exactly that."""
    if request.method != "GET":
        return []
    here = current_language()
    links = []
    for code in languages():
        tag = code.replace("_", "-")
        name = Locale.parse(code).get_display_name(code) or code
        links.append(LanguageLink(tag, name[:1].upper() + name[1:], _page_url(code), tag == here))
    return links


def refusal_text(reason: str) -> str:
    """Why a file was refused, in the page's language (portal/services/refusals.py)."""
    from portal.services.refusals import refusal_text as translate

    return translate(reason)


def _carry_language(endpoint: str, values: dict[str, Any]) -> None:
    """Public links keep the language the page was asked for in its URL."""
    code = g.get("url_language")
    if code and endpoint not in _LANGUAGE_FREE_ENDPOINTS:
        values.setdefault(LANG_PARAMETER, code)


def init_app(app: Flask) -> None:
    # A language offered without its catalog would answer in English under another
    # language's name (<html lang>, hreflang): refused at start instead.
    missing = [
        code
        for code in app.config["TATTLETALE"].languages
        if code != "en" and not (TRANSLATIONS / code / "LC_MESSAGES" / "messages.mo").is_file()
    ]
    if missing:
        raise ConfigError(
            f"TATTLETALE_LANGUAGES names {', '.join(missing)}, which have no compiled "
            f"catalog under {TRANSLATIONS} (see `make translations`)"
        )
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    babel.init_app(app, locale_selector=select_locale)

    @app.before_request
    def note_url_language() -> None:
        if request_audience() is Audience.PUBLIC:
            g.url_language = _language_in_url()

    @app.after_request
    def vary_on_language(response: BaseResponse) -> BaseResponse:
        if g.get("language_from_header"):
            response.vary.add("Accept-Language")
        return response

    app.jinja_env.globals.update(
        current_language=current_language,
        language_links=language_links,
        refusal_text=refusal_text,
    )


def init_blueprint(bp: Any) -> None:
    bp.url_defaults(_carry_language)
