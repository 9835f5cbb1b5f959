"""The public site in the visitor's language: Spanish from the browser or from
``?lang=es``, remembered in the URL and never in a cookie, cached apart per language;
staff pages stay English; and a test that fails while a public string has no
translation.

Expected Spanish texts are written here from the translation as a reader sees it,
not taken from the catalog."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config import PROJECT_ROOT, ConfigError, Settings, load_settings
from media_pipeline import Rejected
from media_pipeline.attachments import sniff_format
from portal import create_app
from portal.extensions import db
from portal.models import Agency, Appeal, Role, Tip, User
from portal.models.appeals import DEFAULT_QUESTION
from portal.public.views import TRANSLATED_DEFAULT_QUESTION
from portal.services.attachments import REFUSAL_REASONS
from portal.services.notifications import reply_waiting_mail
from portal.services.tips import WRONG_RECEIPT, TipInput, submit_tip
from tests.portal.conftest import listed_appeal

SPANISH = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.4"}
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}
TRANSLATIONS = PROJECT_ROOT / "portal" / "translations"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def appeal(agency: Agency, users: dict[Role, User]) -> Appeal:
    return listed_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number="24-0777",
        title="Robo en la tienda de la esquina",
    )


def html_lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, "no lang attribute on <html>"
    return match.group(1)


def vary(response: TestResponse) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",") if v.strip()}


# -- choosing the language --------------------------------------------------------------


def test_appeal_page_follows_the_browsers_language(client: FlaskClient, appeal: Appeal) -> None:
    spanish = client.get(f"/appeals/{appeal.public_id}", headers=SPANISH)
    html = spanish.get_data(as_text=True)
    assert spanish.status_code == 200
    assert html_lang(html) == "es"
    assert "¿Reconoce a esta persona?" in html
    assert "Número de caso" in html
    assert "Sé algo: enviar un aviso" in html
    assert "Do you recognize this person?" not in html
    assert "accept-language" in vary(spanish)
    assert "Set-Cookie" not in spanish.headers

    english = client.get(f"/appeals/{appeal.public_id}", headers=ENGLISH)
    assert html_lang(english.get_data(as_text=True)) == "en"
    assert "Do you recognize this person?" in english.get_data(as_text=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-FR,fr;q=0.9,es;q=0.5", "es"),  # the best of what the site has
        ("de-DE,fr;q=0.8", "en"),  # nothing it has: the default
        ("", "en"),
        ("es-AR", "es"),  # a regional variant of a language the site has
    ],
)
def test_best_match_among_the_configured_languages(
    client: FlaskClient, appeal: Appeal, header: str, expected: str
) -> None:
    headers = {"Accept-Language": header} if header else {}
    html = client.get("/", headers=headers).get_data(as_text=True)
    assert html_lang(html) == expected


def test_lang_parameter_overrides_the_browser_and_travels_on_public_links(
    client: FlaskClient, appeal: Appeal
) -> None:
    response = client.get(f"/appeals/{appeal.public_id}?via=qr&lang=es", headers=ENGLISH)
    html = response.get_data(as_text=True)
    assert html_lang(html) == "es"
    assert "¿Reconoce a esta persona?" in html
    # The answer does not depend on the browser's language, and nothing is stored.
    assert "accept-language" not in vary(response)
    assert "Set-Cookie" not in response.headers
    # The way on keeps the choice: the tip form, the start page, the receipt check.
    tip_link = re.search(r'href="(/appeals/[^"]+/tip[^"]*)"', html)
    assert tip_link and "lang=es" in tip_link.group(1) and "via=qr" in tip_link.group(1)
    assert 'href="/?lang=es"' in html
    assert 'href="/tips/check?lang=es"' in html
    # Media are the same bytes in every language: one URL each, for caches.
    media = re.findall(r'(?:src|poster)="(/media/[^"]+)"', html)
    assert media and not [url for url in media if "lang=" in url]
    # The switch: both languages, named in their own, reachable as plain links.
    english = re.search(r'<a href="([^"]+)" hreflang="en" lang="en">English</a>', html)
    assert english and "lang=en" in english.group(1) and "via=qr" in english.group(1)
    assert re.search(r'hreflang="es" lang="es" aria-current="true">Español</a>', html)
    assert re.search(r'<link rel="alternate" hreflang="en" href="[^"]*lang=en', html)

    back = client.get(english.group(1).replace("&amp;", "&"), headers=SPANISH)
    assert html_lang(back.get_data(as_text=True)) == "en"


def test_an_unknown_lang_parameter_falls_back_to_the_browser(
    client: FlaskClient, appeal: Appeal
) -> None:
    html = client.get("/?lang=xx", headers=SPANISH).get_data(as_text=True)
    assert html_lang(html) == "es"
    assert "lang=xx" not in html


def test_a_query_string_that_is_not_utf8_is_refused_in_the_browsers_language(
    client: FlaskClient,
) -> None:
    # Raw bytes ED A0 80 (an encoded surrogate) in the query, as a probe sends them.
    response = client.get(
        "/", environ_overrides={"QUERY_STRING": "lang=\xed\xa0\x80"}, headers=SPANISH
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "La dirección de esta solicitud contiene caracteres que no son texto válido." in html


def test_search_form_keeps_the_language_of_the_page(client: FlaskClient, appeal: Appeal) -> None:
    html = client.get("/?lang=es").get_data(as_text=True)
    assert '<input type="hidden" name="lang" value="es">' in html
    found = client.get("/?lang=es&q=Narnia").get_data(as_text=True)
    assert "Ningún llamamiento coincide con «Narnia»." in found


def test_an_english_etag_never_answers_for_the_spanish_page(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = f"/appeals/{appeal.public_id}"
    english = client.get(path, headers=ENGLISH)
    etag = english.headers["ETag"]
    # A cache (or a browser that switched language) revalidating the English copy
    # while asking for Spanish gets the Spanish page, not "304 keep yours".
    spanish = client.get(path, headers={**SPANISH, "If-None-Match": etag})
    assert spanish.status_code == 200
    assert "¿Reconoce a esta persona?" in spanish.get_data(as_text=True)
    assert spanish.headers["ETag"] != etag
    same = client.get(path, headers={**SPANISH, "If-None-Match": spanish.headers["ETag"]})
    assert same.status_code == 304
    assert "accept-language" in vary(same)


# -- the tip form, the receipt and what goes wrong ---------------------------------------


def test_tip_form_labels_hints_and_script_texts_are_spanish(
    client: FlaskClient, appeal: Appeal
) -> None:
    html = client.get(f"/appeals/{appeal.public_id}/tip", headers=SPANISH).get_data(as_text=True)
    assert html_lang(html) == "es"
    for text in (
        "Enviar un aviso sobre «Robo en la tienda de la esquina»",
        "Puede permanecer en el anonimato",
        "¿Qué sabe?",
        "¿Cuándo vio a la persona? (opcional)",
        "Cómo contactarle (opcional)",
        "Fotos o vídeos (opcional)",
        "Enviar el aviso",
    ):
        assert text in html, text
    # What the scripts show comes with the page (no inline script under the CSP).
    assert 'data-progress="Enviando sus archivos: {percent} %"' in html
    assert 'data-waiting="Se enviará en un momento…"' in html


def test_missing_csrf_token_keeps_the_text_and_says_so_in_spanish(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = f"/appeals/{appeal.public_id}/tip?lang=es"
    client.get(path)  # the visitor has a session
    response = client.post(path, data={"body": "Conduce un Honda rojo."})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Este formulario había caducado. Lo que escribió sigue aquí" in html
    assert "Conduce un Honda rojo." in html
    assert CSRF.search(html), "a fresh token to send it again"
    # No switch on the answer to a form: its link would GET a blank form.
    assert "hreflang" not in html
    assert db.session.query(Tip).count() == 0


def test_forged_proof_of_work_is_refused_in_spanish_with_the_text_kept(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = f"/appeals/{appeal.public_id}/tip?lang=es"
    token = CSRF.search(client.get(path).get_data(as_text=True))
    assert token
    response = client.post(
        path,
        data={
            "csrf_token": token.group(1),
            "body": "Vive en el número 14.",
            "pow_challenge": "tip.9999999999.16.forged.signature",
            "pow_solution": "1",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert (
        "La comprobación antispam de este formulario no es válida. Envíelo de nuevo, por "
        "favor. Lo que escribió sigue aquí."
    ) in html
    assert "Vive en el número 14." in html
    assert db.session.query(Tip).count() == 0


def test_empty_tip_is_refused_in_spanish(client: FlaskClient, appeal: Appeal) -> None:
    path = f"/appeals/{appeal.public_id}/tip"
    token = CSRF.search(client.get(path, headers=SPANISH).get_data(as_text=True))
    assert token
    response = client.post(path, data={"csrf_token": token.group(1), "body": "  "}, headers=SPANISH)
    assert response.status_code == 422
    assert "Lo que sabe: este dato es obligatorio." in response.get_data(as_text=True)


def test_tip_sent_in_spanish_gets_a_spanish_receipt_and_remembers_its_language(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = f"/appeals/{appeal.public_id}/tip"
    token = CSRF.search(client.get(path, headers=SPANISH).get_data(as_text=True))
    assert token
    response = client.post(
        path, data={"csrf_token": token.group(1), "body": "Es mi vecino."}, headers=SPANISH
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in (
        "Gracias. Hemos recibido su aviso.",
        "Su comprobante: anótelo ahora",
        "Esto se muestra una sola vez.",
        "Número de aviso",
        "Frase de acceso",
        "Si está en peligro, o la persona está allí en este momento, llame al 911.",
    ):
        assert text in html, text
    assert response.headers["Cache-Control"] == "no-store"
    tip = db.session.query(Tip).one()
    assert tip.language == "es"


def test_a_refused_file_is_explained_in_spanish_on_the_receipt(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = f"/appeals/{appeal.public_id}/tip?lang=es"
    page = client.get(path).get_data(as_text=True)
    token, draft = CSRF.search(page), re.search(r'name="draft" type="hidden" value="([^"]+)"', page)
    assert token and draft
    response = client.post(
        path,
        data={
            "csrf_token": token.group(1),
            "draft": draft.group(1),
            "body": "Le adjunto la denuncia.",
            "files": [(io.BytesIO(b"%PDF-1.7 not a photo"), "denuncia.pdf", "application/pdf")],
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Gracias. Hemos recibido su aviso." in html  # the tip is kept all the same
    refused = re.search(r'<li class="attachment attachment-refused">([^<]+)</li>', html)
    assert refused
    assert refused.group(1).startswith("Archivo 1 ")
    assert refused.group(1).endswith(
        ": no admitido: es un documento PDF; admitimos fotos (JPEG, PNG, HEIC) y vídeos (MP4, MOV)"
    )


def test_the_listed_refusal_reasons_are_the_pipelines_own() -> None:
    """The catalog translates a stored reason by its exact English text: each listed
    one must be a reason the pipeline gives (a reworded one would go untranslated)."""
    heads = [b"", b"%PDF", b"GIF89a", b"PK\x03\x04", b"BM", b"II*\x00", b"MM\x00*"]
    heads += [b"\x1a\x45\xdf\xa3", b"RIFF", b"\x7fELF", b"MZ", b"plain text\n", b"\x00\x01"]
    heads.append(b"\x00\x00\x00\x14ftypavif\x00\x00\x00\x00avif")
    given = set()
    for head in heads:
        with pytest.raises(Rejected) as refused:
            sniff_format(head)
        given.add(refused.value.reason)
    listed = {str(reason) for reason in REFUSAL_REASONS}
    assert given <= listed
    assert listed - given == {"The file was lost before it was processed."}


def test_wrong_receipt_is_explained_in_spanish(client: FlaskClient, appeal: Appeal) -> None:
    token = CSRF.search(client.get("/tips/check?lang=es").get_data(as_text=True))
    assert token
    response = client.post(
        "/tips/check?lang=es",
        data={"csrf_token": token.group(1), "number": "T-AAAAA-BBBBB", "passphrase": "uno dos"},
    )
    assert response.status_code == 400
    assert "Ese número de aviso y esa frase de acceso no corresponden a ningún aviso." in (
        response.get_data(as_text=True)
    )


def test_error_pages_of_the_public_site_are_spanish(client: FlaskClient, appeal: Appeal) -> None:
    response = client.get("/appeals/no-such-appeal", headers=SPANISH)
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert html_lang(html) == "es"
    assert "No hay nada en esta dirección." in html
    assert "Ir a la página de inicio" in html


def test_staff_pages_stay_english_whatever_the_browser_asks(client: FlaskClient) -> None:
    response = client.get("/staff/login?lang=es", headers=SPANISH)
    html = response.get_data(as_text=True)
    assert html_lang(html) == "en"
    assert "accept-language" not in vary(response)
    missing = client.get("/staff/no-such-page", headers=SPANISH).get_data(as_text=True)
    assert "There is nothing at this address." in missing


# -- the public API and the tipster's mail -----------------------------------------------


def test_api_visitor_messages_follow_accept_language_and_codes_do_not(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = "/api/v1/public/tips/T-AAAAA-BBBBB/messages"
    english = client.get(path, headers={"X-Tip-Passphrase": "uno dos", **ENGLISH})
    spanish = client.get(path, headers={"X-Tip-Passphrase": "uno dos", **SPANISH})
    assert english.status_code == spanish.status_code == 404
    assert english.json == {"type": "about:blank", "title": str(WRONG_RECEIPT), "status": 404}
    assert spanish.json == {
        "type": "about:blank",
        "title": "Ese número de aviso y esa frase de acceso no corresponden a ningún aviso. "
        "Compruébelos e inténtelo de nuevo.",
        "status": 404,
    }
    assert "accept-language" in vary(spanish)

    unpublished = client.get("/api/v1/public/appeals/no-such-appeal", headers=SPANISH)
    assert unpublished.status_code == 404
    assert unpublished.json is not None
    assert unpublished.json["title"] == "No hay ningún llamamiento en esta dirección."

    refused = client.post(
        f"/api/v1/public/appeals/{appeal.public_id}/tips",
        json={"body": "Es mi vecino.", "phone": "llámeme"},
        headers=SPANISH,
    )
    assert refused.status_code == 422
    assert refused.json is not None
    assert refused.json["field"] == "phone"  # machine-readable: the same in every language
    assert refused.json["title"].startswith("Escriba el número de teléfono solo con cifras")


def test_reply_notice_is_written_in_the_language_the_tip_was_sent_in(
    app: Flask, appeal: Appeal
) -> None:
    def tip_in(language: str) -> Tip:
        tip, _receipt = submit_tip(
            TipInput(
                body="Es mi vecino.",
                email="vecino@example.org",
                notify_by_email=True,
                language=language,
            ),
            agency=appeal.agency,
            appeal=appeal,
        )
        return tip

    spanish = reply_waiting_mail(tip_in("es"))
    assert spanish.subject == "Tiene una respuesta esperándole"
    assert spanish.text.startswith("Hola:\n\nUsted envió información a través de este sitio")
    assert "/tips/check?lang=es" in spanish.text
    assert "Este correo no contiene la respuesta." in spanish.text

    english = reply_waiting_mail(tip_in("en"))
    assert english.subject == "A reply is waiting for you"
    assert "/tips/check\n" in english.text and "lang=" not in english.text
    # A language no longer offered: the site's default, never an error.
    assert reply_waiting_mail(tip_in("fr")).subject == "A reply is waiting for you"
    db.session.rollback()


# -- a place for more languages ------------------------------------------------------------


def extracted_catalog() -> Catalog:
    """The public strings as `make translations` extracts them (babel.cfg)."""
    with (PROJECT_ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    catalog = Catalog()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(PROJECT_ROOT), method_map, options_map, keywords=keywords
    ):
        catalog.add(message, None, context=context)
    return catalog


def spanish_catalog() -> Catalog:
    with (TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale="es")


def test_every_public_string_has_a_spanish_translation() -> None:
    extracted = extracted_catalog()
    assert len(extracted) > 100  # the extraction found the templates and the code
    spanish = spanish_catalog()
    untranslated = []
    for message in extracted:
        if not message.id:
            continue
        translation = spanish.get(message.id, message.context)
        if translation is None or not translation.string or translation.fuzzy:
            untranslated.append(message.id)
    assert not untranslated, f"run `make translations` and translate: {untranslated}"
    # Placeholders kept as they are, so no message fails when it is formatted.
    problems = [(m.id, errors) for m, errors in spanish.check()]
    assert not problems


def test_the_compiled_catalog_matches_its_source() -> None:
    """The .mo files are committed (every install has them, make or not): one older
    than its .po fails here, so `make translations` is not forgotten."""
    for po_path in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        with po_path.open("rb") as po:
            source = read_po(po)
        with Path(po_path.with_suffix(".mo")).open("rb") as mo:
            compiled = read_mo(mo)
        expected = {m.id: m.string for m in source if m.id and m.string and not m.fuzzy}
        assert {m.id: m.string for m in compiled if m.id} == expected, po_path


def test_every_default_language_has_a_catalog() -> None:
    for code in load_settings({"TATTLETALE_ENV": "testing"}).languages:
        if code != "en":
            assert (TRANSLATIONS / code / "LC_MESSAGES" / "messages.mo").is_file(), code


def test_the_default_question_is_the_models_own_words() -> None:
    # Outside a request: the source text, which must be what the model stores.
    assert str(TRANSLATED_DEFAULT_QUESTION) == DEFAULT_QUESTION


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("en,es", ("en", "es")), (" es , en,es ", ("es", "en")), ("en,pt-BR", ("en", "pt_BR"))],
)
def test_languages_setting(raw: str, expected: tuple[str, ...]) -> None:
    env = {"TATTLETALE_ENV": "testing", "TATTLETALE_LANGUAGES": raw}
    assert load_settings(env).languages == expected


def test_a_language_without_its_catalog_is_refused_at_start(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="TATTLETALE_LANGUAGES names fr"):
        create_app(replace(settings, languages=("en", "es", "fr")))


@pytest.mark.parametrize("raw", ["english", "es;DROP", " , "])
def test_languages_setting_refuses_what_is_not_a_language_code(raw: str) -> None:
    with pytest.raises(ConfigError, match="TATTLETALE_LANGUAGES"):
        load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_LANGUAGES": raw})


def test_wtforms_own_messages_are_spanish_and_their_catalogue_is_read_once(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field's built-in message ("Not a valid integer value.") in the page's language; the
    catalogue is read from disk once per language, not on every request."""
    from babel import support
    from wtforms import IntegerField

    from portal import forms

    class Count(forms.Form):
        class Meta:
            csrf = False

        count = IntegerField()

    forms._wtforms_translations.cache_clear()
    reads: list[object] = []
    real_load = support.Translations.load
    monkeypatch.setattr(
        support.Translations,
        "load",
        lambda *args, **kw: reads.append(args) or real_load(*args, **kw),
    )
    for lang, expected in [
        ("es", "No es un valor entero válido."),
        ("es", "No es un valor entero válido."),
        ("en", "Not a valid integer value."),
    ]:
        # A request of its own each time (its own g, where the locale is kept).
        with (
            app.app_context(),
            app.test_request_context(f"/?lang={lang}", method="POST", data={"count": "many"}),
        ):
            form = Count()
            assert not form.validate()
            assert form.count.errors == [expected]
    assert len(reads) == 2  # Spanish once, English once
