"""Google, played on loopback for the Gmail add-on's tests.

* ``GoogleKeys`` publishes a JWKS the way ``www.googleapis.com/oauth2/v3/certs`` does and
  signs ID tokens with the private half: the add-on's system token and the user's ID token.
* ``GmailApi`` answers ``GET /gmail/v1/users/me/messages/{id}?format=full`` as Google
  documents the resource (payload, headers, nested parts, base64url bodies), only for the
  expected OAuth token and message access token; some ids answer errors or hang.
* ``check_response`` parses a whole add-on response strictly (the trigger's or the card
  action's wrapper, built here from Google's documented JSON, with ``google.apps.card_v1.Card``
  inside; unknown fields rejected) and holds every card to Google's widget limits.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from google.apps.card_v1 import Card
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.servers import KeyServer

BASE_URL = "https://crm.test"
SERVICE_ACCOUNT = "service-123456789@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
CLIENT_ID = "123456789-addon.apps.googleusercontent.com"
OAUTH_TOKEN = "ya29.user-oauth-token"
ACCESS_TOKEN = "message-access-token"


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class GoogleKeys(KeyServer):
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "google-1", "use": "sig"})
        super().__init__(json.dumps({"keys": [self.key.as_dict(private=False)]}).encode(), path="/oauth2/v3/certs")
        self.jwks_url = self.url

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        return jwt.encode({"alg": "RS256", "kid": "google-1"}, claims, key or self.key)

    def system_token(self, path: str, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": f"{BASE_URL}{path}",
            "sub": "1044",
            "email": SERVICE_ACCOUNT,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **overrides,
        }
        return self.sign({k: v for k, v in claims.items() if v is not None})

    def user_token(self, email: str, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": CLIENT_ID,
            "sub": f"sub-{email}",
            "email": email,
            "email_verified": True,
            "hd": email.split("@")[-1],
            "iat": now,
            "exp": now + 3600,
            **overrides,
        }
        return self.sign({k: v for k, v in claims.items() if v is not None})


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def gmail_resource(message_id: str, headers: dict[str, str], parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": message_id,
        "threadId": f"t-{message_id}",
        "labelIds": ["INBOX"],
        "snippet": "",
        "internalDate": "1763650800000",
        "payload": {**parts, "headers": [{"name": k, "value": v} for k, v in headers.items()]},
    }


class GmailApi(_Server):
    """Messages by id; ``slow`` hangs past the client's time-out, ``broken`` answers 500,
    ``junk`` answers HTML."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Google's API servers do
            disable_nagle_algorithm = True  # headers and body leave at once, as from a real server

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                api.requests.append((self.path, dict(self.headers)))
                message_id = parts.path.rsplit("/", 1)[-1]
                if not parts.path.startswith("/gmail/v1/users/me/messages/"):
                    return self._answer(404, {"error": {"code": 404, "message": "Not Found"}})
                if (
                    self.headers.get("Authorization") != f"Bearer {OAUTH_TOKEN}"
                    or self.headers.get("X-Goog-Gmail-Access-Token") != ACCESS_TOKEN
                ):
                    return self._answer(
                        401, {"error": {"code": 401, "message": "Request had invalid authentication credentials."}}
                    )
                if message_id == "slow":
                    time.sleep(2)
                    return self._answer(200, {})
                if message_id == "broken":
                    return self._answer(500, {"error": {"code": 500, "message": "Backend Error"}})
                if message_id == "junk":
                    body = b"<html>nope</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return None
                if message_id not in api.messages:
                    return self._answer(404, {"error": {"code": 404, "message": "Requested entity was not found."}})
                return self._answer(200, api.messages[message_id])

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the time-out case)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)


def cards_of(response: Any) -> list[dict[str, Any]]:
    """Every card an add-on response shows (pushed or updated)."""
    found = []
    if isinstance(response, dict):
        for key, value in response.items():
            if key in ("pushCard", "updateCard"):
                found.append(value)
            else:
                found += cards_of(value)
    elif isinstance(response, list):
        for value in response:
            found += cards_of(value)
    return found


def check_cards(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Parse every card of a response strictly as ``google.apps.card_v1.Card``."""
    found = cards_of(response)
    for made in found:
        json_format.Parse(json.dumps(made), Card.pb()(), ignore_unknown_fields=False)
    return found


# -- the add-on response around the cards ---------------------------------------------------------
#
# No published package holds the HTTP runtime's response types, so they are built here as
# protobuf messages from Google's documented JSON (Workspace add-ons, "Event objects" and
# "Build interactive interfaces": ``RenderActions``, ``Action``, ``Navigation``,
# ``Notification``, and card_v1's own ``OpenLink``), with the real ``Card`` inside:
#
#   trigger (homepage, contextual, compose):  {"action": Action}
#   card action:                              {"renderActions": {"action": Action}}
#   Action:      {"navigations": [Navigation], "notification": {"text"}, "link": OpenLink}
#   Navigation:  one of popToRoot, pop, popToCard, pushCard (Card), updateCard (Card)

_PACKAGE = "inboxcrm.tests.addons"


def _response_types() -> dict[str, type]:
    pool = descriptor_pool.Default()
    name = "inboxcrm/tests/addon_response.proto"
    try:
        pool.FindFileByName(name)
    except KeyError:
        field = descriptor_pb2.FieldDescriptorProto
        card_file = Card.pb().DESCRIPTOR.file.name

        def message(title: str, *fields: tuple[str, int, int, str | None, bool], oneof: str | None = None):
            made = descriptor_pb2.DescriptorProto(name=title)
            if oneof:
                made.oneof_decl.add(name=oneof)
            for number, (snake, kind, label, type_name, in_oneof) in enumerate(fields, start=1):
                camel = snake.split("_")[0] + "".join(w.title() for w in snake.split("_")[1:])
                added = made.field.add(name=snake, number=number, type=kind, label=label, json_name=camel)
                if type_name:
                    added.type_name = type_name
                if in_oneof:
                    added.oneof_index = 0
            return made

        one, many = field.LABEL_OPTIONAL, field.LABEL_REPEATED
        msg, text, flag = field.TYPE_MESSAGE, field.TYPE_STRING, field.TYPE_BOOL
        card_type = ".google.apps.card.v1.Card"
        proto = descriptor_pb2.FileDescriptorProto(name=name, package=_PACKAGE, syntax="proto3", dependency=[card_file])
        proto.message_type.extend(
            [
                message("Notification", ("text", text, one, None, False)),
                message(
                    "Navigation",
                    ("pop_to_root", flag, one, None, True),
                    ("pop", flag, one, None, True),
                    ("pop_to_card", text, one, None, True),
                    ("push_card", msg, one, card_type, True),
                    ("update_card", msg, one, card_type, True),
                    oneof="navigation",
                ),
                message(
                    "Action",
                    ("navigations", msg, many, f".{_PACKAGE}.Navigation", False),
                    ("link", msg, one, ".google.apps.card.v1.OpenLink", False),
                    ("notification", msg, one, f".{_PACKAGE}.Notification", False),
                ),
                message("RenderActions", ("action", msg, one, f".{_PACKAGE}.Action", False)),
                message("TriggerResponse", ("action", msg, one, f".{_PACKAGE}.Action", False)),
                message("ActionResponse", ("render_actions", msg, one, f".{_PACKAGE}.RenderActions", False)),
            ]
        )
        pool.Add(proto)
    return {
        kind: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{kind}"))
        for kind in ("TriggerResponse", "ActionResponse")
    }


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


MAX_WIDGETS = 100  # per card, as Google documents (card_v1 ``Card``: more are ignored)
MAX_SECTIONS = 100


def check_response(response: Any, kind: str) -> list[dict[str, Any]]:
    """Parse a whole answer strictly as the add-on response it is (``kind``: "trigger" or
    "action"), cards and all, in Google's JSON names only; every card within Google's limits.
    Returns the cards it shows."""
    assert isinstance(response, dict), response
    assert not [k for k in _keys(response) if "_" in k], "only JSON (lowerCamel) names"
    message = _response_types()["TriggerResponse" if kind == "trigger" else "ActionResponse"]()
    json_format.ParseDict(response, message, ignore_unknown_fields=False)
    action = response["action"] if kind == "trigger" else response["renderActions"]["action"]
    assert action, "an answer does something"
    if kind == "trigger":
        assert [list(n) for n in action["navigations"]] == [["pushCard"]], "a trigger shows one card"
    found = check_cards(response)
    for made in found:
        widgets = [w for section in made["sections"] for w in section["widgets"]]
        assert len(made["sections"]) <= MAX_SECTIONS and len(widgets) <= MAX_WIDGETS, made["header"]
    return found


def texts(response: Any) -> str:
    """All the words a response shows, for assertions."""
    return json.dumps(response, ensure_ascii=False)
