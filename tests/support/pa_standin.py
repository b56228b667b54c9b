"""A stand-in Plateforme Agréée: a small HTTP server taking Factur-X uploads the way a PA's
REST API plausibly does. Real PA APIs differ; this one holds what they share:

- `POST /invoices`, multipart/form-data with the Factur-X PDF as `file` (and `number`),
  `Authorization: Bearer <token>` (401 otherwise), `Idempotency-Key: <invoice number>`;
- 201 `{"id", "status": "received"}` for a new document; a repeated key is answered 200 with
  the first receipt; a body that is no Factur-X PDF is refused with 422;
- `fail_next` makes the next upload answer 503, as a PA in maintenance does.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import uuid
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import facturx


@dataclass
class Received:
    id: str
    number: str
    pdf: bytes
    xml: bytes


@dataclass
class PlatformState:
    token: str
    documents: dict[str, Received] = field(default_factory=dict)  # by idempotency key
    uploads: int = 0
    fail_next: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _form_parts(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """multipart/form-data fields by name: (filename, content)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = (part.get_filename(), payload)
    return parts


def _handler(state: PlatformState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/invoices":
                self._answer(404, {"error": "not_found"})
                return
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self._answer(401, {"error": "unauthorized"})
                return
            key = self.headers.get("Idempotency-Key", "")
            with state.lock:
                state.uploads += 1
                if state.fail_next:
                    state.fail_next = False
                    self._answer(503, {"error": "maintenance"})
                    return
                if key in state.documents:
                    self._answer(200, {"id": state.documents[key].id, "status": "received"})
                    return
                parts = _form_parts(self.headers.get("Content-Type", ""), body)
                if "file" not in parts or not key:
                    self._answer(422, {"error": "a file and an Idempotency-Key are required"})
                    return
                pdf = parts["file"][1]
                try:
                    _name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
                except Exception as error:  # any unreadable upload is the sender's fault
                    self._answer(422, {"error": f"not a Factur-X PDF: {error}"})
                    return
                if not xml:
                    self._answer(422, {"error": "no Factur-X XML in the PDF"})
                    return
                received = Received(f"pa-{uuid.uuid4().hex[:16]}", key, pdf, bytes(xml))
                state.documents[key] = received
                self._answer(201, {"id": received.id, "status": "received"})

    return Handler


class PlatformStandin:
    def __init__(self, token: str) -> None:
        self.state = PlatformState(token=token)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> PlatformStandin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
