"""Strategies: versions, validation and tenant isolation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import sign_up

SOURCE = """
from freqtrade.strategy import IStrategy


class {name}(IStrategy):
    timeframe = "5m"
    minimal_roi = {{"0": 0.01}}
    stoploss = -0.1
"""


def test_create_list_version_and_delete(http: TestClient) -> None:
    client = sign_up(http)
    created = http.post(
        "/api/v1/strategies",
        json={"name": "Alpha", "source": SOURCE.format(name="Alpha")},
        headers=client.auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "Alpha" and body["version"] == 1
    strategy_id = body["id"]

    same = http.put(
        f"/api/v1/strategies/{strategy_id}",
        json={"source": SOURCE.format(name="Alpha")},
        headers=client.auth,
    )
    assert same.json()["version"] == 1  # identical source adds no version
    changed = http.put(
        f"/api/v1/strategies/{strategy_id}",
        json={"source": SOURCE.format(name="Alpha") + "\n# tweak\n"},
        headers=client.auth,
    )
    assert changed.json()["version"] == 2
    detail = http.get(f"/api/v1/strategies/{strategy_id}", headers=client.auth).json()
    assert detail["version"] == 2 and detail["source"].endswith("# tweak\n")

    assert http.delete(f"/api/v1/strategies/{strategy_id}", headers=client.auth).status_code == 204
    assert http.get(f"/api/v1/strategies/{strategy_id}", headers=client.auth).status_code == 404
    assert http.get("/api/v1/strategies", headers=client.auth).json() == []
    # The name is free again once the strategy is hidden.
    again = http.post(
        "/api/v1/strategies",
        json={"name": "Alpha", "source": SOURCE.format(name="Alpha")},
        headers=client.auth,
    )
    assert again.status_code == 201


def test_bad_sources_are_refused_with_the_cause(http: TestClient) -> None:
    client = sign_up(http)
    cases = {
        "not valid Python": {"name": "Beta", "source": "this is not python at all ("},
        "no class named 'Gamma'": {"name": "Gamma", "source": SOURCE.format(name="Other")},
        "class name": {"name": "../../etc/passwd", "source": SOURCE.format(name="X")},
        "256 KiB": {"name": "Big", "source": SOURCE.format(name="Big") + "#" * (300 * 1024)},
    }
    for expected, body in cases.items():
        response = http.post("/api/v1/strategies", json=body, headers=client.auth)
        assert response.status_code in (413, 422), (expected, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert expected in response.json()["detail"], (expected, response.json())
    assert http.get("/api/v1/strategies", headers=client.auth).json() == []


def test_a_refused_version_names_the_line_at_fault(http: TestClient) -> None:
    client = sign_up(http)
    body = {"name": "Eta", "source": SOURCE.format(name="Eta")}
    strategy_id = http.post("/api/v1/strategies", json=body, headers=client.auth).json()["id"]
    # SOURCE starts with an empty line: its class statement is line 5, the stoploss line 8.
    broken = SOURCE.format(name="Eta").replace("stoploss = -0.1", "stoploss = -0.1)")
    response = http.put(
        f"/api/v1/strategies/{strategy_id}", json={"source": broken}, headers=client.auth
    )
    assert response.status_code == 422, response.text
    assert response.json()["line"] == 8
    assert "line 8" in response.json()["detail"]
    # A refusal about no line in particular carries none.
    other = http.put(
        f"/api/v1/strategies/{strategy_id}",
        json={"source": SOURCE.format(name="Theta")},
        headers=client.auth,
    )
    assert other.status_code == 422 and "line" not in other.json()


def test_duplicate_name_is_a_conflict(http: TestClient) -> None:
    client = sign_up(http)
    body = {"name": "Delta", "source": SOURCE.format(name="Delta")}
    assert http.post("/api/v1/strategies", json=body, headers=client.auth).status_code == 201
    duplicate = http.post("/api/v1/strategies", json=body, headers=client.auth)
    assert duplicate.status_code == 409
    assert "PUT" in duplicate.json()["detail"]


def test_another_tenant_gets_404(http: TestClient) -> None:
    alice, bob = sign_up(http, "Alice"), sign_up(http, "Bob")
    strategy_id = http.post(
        "/api/v1/strategies",
        json={"name": "Secret", "source": SOURCE.format(name="Secret")},
        headers=alice.auth,
    ).json()["id"]
    for method, body in (
        ("GET", None),
        ("PUT", {"source": SOURCE.format(name="Secret")}),
        ("DELETE", None),
    ):
        response = http.request(
            method, f"/api/v1/strategies/{strategy_id}", json=body, headers=bob.auth
        )
        assert response.status_code == 404, method
        assert "Secret" not in response.text
    assert http.get(f"/api/v1/strategies/{strategy_id}", headers=alice.auth).status_code == 200
