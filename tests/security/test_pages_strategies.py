"""The strategies' pages: another client's strategy is a page that does not exist, whatever
the page or form, and no form is taken without this browser's CSRF token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import Client, sign_up, upload_strategy
from tests.support.browser import LivePortal
from tests.support.page_client import form_token, logged_in

SOURCE = "from freqtrade.strategy import IStrategy\n\n\nclass {name}(IStrategy):\n    pass\n"


def _versions(client: Client, strategy_id: str) -> list[int]:
    answer = client.http.get(f"/api/v1/strategies/{strategy_id}/versions", headers=client.auth)
    assert answer.status_code == 200, answer.text
    return [version["version"] for version in answer.json()]


def test_another_clients_strategy_pages_and_forms_are_not_found(
    http: TestClient, live_portal: LivePortal
) -> None:
    alice, bob = sign_up(http, "Alice"), sign_up(http, "Bob")
    secret = upload_strategy(alice, "Quick")
    changed = http.put(
        f"/api/v1/strategies/{secret}",
        json={"source": SOURCE.format(name="Quick")},
        headers=alice.auth,
    )
    assert changed.json()["version"] == 2
    with logged_in(live_portal, bob.email, bob.password) as browser:
        token = form_token(browser, "/app/strategies/new")
        own = browser.get(f"/app/strategies/{upload_strategy(bob, 'Quick')}")
        assert own.status_code == 200 and "Quick" in own.text
        for path in (
            f"/app/strategies/{secret}",
            f"/app/strategies/{secret}/edit",
            f"/app/strategies/{secret}/versions/1",
            f"/app/strategies/{secret}/diff?from=1&to=2",
        ):
            answer = browser.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert "Page introuvable" in answer.text and "IStrategy" not in answer.text
        for path, form in (
            (f"/app/strategies/{secret}/edit", {"base": "2", "source": "# mine now\n"}),
            (f"/app/strategies/{secret}/versions/1/delete", {}),
            (f"/app/strategies/{secret}/delete", {}),
        ):
            answer = browser.post(path, data={"csrf_token": token, **form})
            assert answer.status_code == 404, (path, answer.text)
    # Alice's strategy is as she left it.
    assert _versions(alice, secret) == [2, 1]


def test_the_strategies_forms_need_this_browsers_token(
    http: TestClient, live_portal: LivePortal
) -> None:
    carol = sign_up(http, "Carol")
    with logged_in(live_portal, carol.email, carol.password) as browser:
        token = form_token(browser, "/app/strategies/new")
        created = browser.post(
            "/app/strategies/new",
            data={"csrf_token": token, "name": "Mine", "source": SOURCE.format(name="Mine")},
        )
        assert created.status_code == 303, created.text
        target = created.headers["location"].split("?")[0]
        strategy_id = target.rsplit("/", 1)[1]
        new_source = {"base": "1", "source": SOURCE.format(name="Mine") + "# v2\n"}
        for path, form, files in (
            ("/app/strategies/new", {"name": "Other", "source": SOURCE.format(name="Other")}, None),
            (f"{target}/edit", new_source, None),
            (f"{target}/edit", {"base": "1"}, {"file": ("Mine.py", new_source["source"].encode())}),
            (f"{target}/delete", {}, None),
        ):
            for refused in (form, {**form, "csrf_token": "0" * 64}):
                answer = browser.post(path, data=refused, files=files)
                assert answer.status_code == 403, (path, answer.text)
                assert answer.headers["content-type"].startswith("text/html")
            cross_site = browser.post(
                path,
                data={**form, "csrf_token": token},
                files=files,
                headers={"Sec-Fetch-Site": "cross-site"},
            )
            assert cross_site.status_code == 403, (path, cross_site.text)
        # Nothing was created, saved or deleted.
        names = [s["name"] for s in http.get("/api/v1/strategies", headers=carol.auth).json()]
        assert names == ["Mine"]
        assert _versions(carol, strategy_id) == [1]
        # With its token, the same upload is a new version.
        saved = browser.post(
            f"{target}/edit",
            data={"csrf_token": token, "base": "1"},
            files={"file": ("Mine.py", new_source["source"].encode())},
        )
        assert saved.status_code == 303, saved.text
        assert _versions(carol, strategy_id) == [2, 1]


def test_an_upload_is_bounded_and_a_refused_one_keeps_the_typed_code(
    http: TestClient, live_portal: LivePortal
) -> None:
    dave = sign_up(http, "Dave")
    typed = SOURCE.format(name="Typed").replace("\n", "\r\n")  # as a browser sends a text area
    with logged_in(live_portal, dave.email, dave.password) as browser:
        token = form_token(browser, "/app/strategies/new")
        form = {"csrf_token": token, "name": "Typed", "source": typed}
        for content, refusal in (
            (b"# caf\xe9\n" + SOURCE.format(name="Typed").encode(), "texte UTF-8"),
            (b"#" * (300 * 1024), "dépasse 256"),
            (b"", "fichier choisi est vide"),
        ):
            answer = browser.post(
                "/app/strategies/new", data=form, files={"file": ("Typed.py", content)}
            )
            assert answer.status_code == 422, answer.text
            assert refusal in answer.text
            # The code typed in the form comes back as it was, for nothing to be lost.
            assert SOURCE.format(name="Typed").replace(">", "&gt;") in answer.text
        # Past the portal's body limit, nothing is read.
        too_large = browser.post(
            "/app/strategies/new",
            data=form,
            files={"file": ("Typed.py", b"#" * (1024 * 1024 + 1))},
        )
        assert too_large.status_code == 413
        assert http.get("/api/v1/strategies", headers=dave.auth).json() == []

        # A file's byte order mark is no part of its code; a text area's CR LF ends are LF.
        uploaded = browser.post(
            "/app/strategies/new",
            data=form,
            files={"file": ("Typed.py", b"\xef\xbb\xbf" + SOURCE.format(name="Typed").encode())},
        )
        assert uploaded.status_code == 303, uploaded.text
        typed_only = browser.post(
            "/app/strategies/new",
            data={**form, "name": "Other", "source": typed.replace("Typed", "Other")},
        )
        assert typed_only.status_code == 303, typed_only.text
    for strategy in http.get("/api/v1/strategies", headers=dave.auth).json():
        detail = http.get(f"/api/v1/strategies/{strategy['id']}", headers=dave.auth).json()
        assert detail["source"] == SOURCE.format(name=strategy["name"]), detail
