"""A stand-in for VIES's REST interface on 127.0.0.1: `POST /check-vat-number` with the JSON
body VIES takes, answered as VIES answers (registered numbers with their name and address,
a consultation number when the requester names its own VAT number, "---" where a member
state publishes nothing, and `errorWrappers` with MS_UNAVAILABLE for a state marked down).
Tests only: never part of an image.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/taxation_customs/vies/rest-api/check-vat-number"


@dataclass
class Registered:
    name: str = "---"
    address: str = "---"


@dataclass
class ViesStandin:
    registered: dict[str, Registered] = field(default_factory=dict)
    unavailable_states: set[str] = field(default_factory=set)
    delay_seconds: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> ViesStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                standin.requests.append(body)
                time.sleep(standin.delay_seconds)
                status, answer = standin.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path != PATH:
            return 404, {"actionSucceed": False, "errorWrappers": [{"error": "NOT_FOUND"}]}
        country, number = str(body.get("countryCode", "")), str(body.get("vatNumber", ""))
        if len(country) != 2 or not number.isalnum():
            return 400, {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]}
        if country in self.unavailable_states:
            return 200, {
                "actionSucceed": False,
                "errorWrappers": [
                    {"error": "MS_UNAVAILABLE", "message": "Member State service unavailable."}
                ],
            }
        found = self.registered.get(country + number)
        identifier = ""
        if body.get("requesterMemberStateCode") and body.get("requesterNumber"):
            identifier = "WAPIAAAA" + secrets.token_hex(4).upper()
            self.identifiers.append(identifier)
        return 200, {
            "countryCode": country,
            "vatNumber": number,
            "requestDate": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "valid": found is not None,
            "requestIdentifier": identifier,
            "name": found.name if found else "---",
            "address": found.address if found else "---",
            "traderName": "---",
            "traderStreet": "---",
            "traderPostalCode": "---",
            "traderCity": "---",
            "traderCompanyType": "---",
            "traderNameMatch": "NOT_PROCESSED",
            "traderStreetMatch": "NOT_PROCESSED",
            "traderPostalCodeMatch": "NOT_PROCESSED",
            "traderCityMatch": "NOT_PROCESSED",
            "traderCompanyTypeMatch": "NOT_PROCESSED",
        }
