"""A local stand-in for Microsoft's and Google's servers, answering as their documentation shows:
the OAuth endpoints (authorization code with PKCE, refresh, client credentials, JWT bearer),
Microsoft Graph's ``me``, mail folder and calendar view delta queries, and the Gmail and Calendar
APIs' lists, history and sync tokens.

The tests drive it (a message arrives, a consent is revoked, a cursor expires, the next answers
are throttled), and the preview connects its sample mailbox to it, so that capture can be watched
with no Microsoft or Google account. It holds everything in memory and serves loopback only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

PUSH_ACCOUNT = "pubsub-push@standin.iam.gserviceaccount.com"  # who Pub/Sub's push tokens name


@dataclass
class Item:
    seq: int  # when it last changed, in the stand-in's one sequence
    folder: str  # inbox | sentitems | calendar
    body: dict[str, Any]  # the resource, as Graph shapes it
    removed: bool = False
    gmail_id: str = ""


@dataclass
class Box:
    address: str
    items: dict[str, Item] = field(default_factory=dict)  # by Graph id
    private_label: str = "Label_7"


class StandIn:
    """The stand-in's state, and its server on a free loopback port (``url``)."""

    def __init__(self, *, page_size: int = 10, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.seq = 1
        self.boxes: dict[str, Box] = {}
        self.codes: dict[str, tuple[str, str, str]] = {}  # code -> address, challenge, redirect uri
        self.refresh_tokens: dict[str, str] = {}  # token -> address
        self.access_tokens: dict[str, tuple[str, datetime]] = {}
        self.oldest_cursor = 0  # cursors older than this answer 410 (Graph, Calendar) or 404 (Gmail)
        self.throttle: list[int] = []  # the next answers' Retry-After seconds, each a 429
        self.requests: list[str] = []
        self.page_size = page_size
        self.token_lifetime = 3600
        self.subscriptions: dict[str, dict[str, Any]] = {}  # Graph's, by id
        self.watches: dict[str, str] = {}  # Gmail address -> topic
        self.pubsub_push_url: str | None = None  # the push subscription's endpoint (ours)
        self.pubsub_audience: str | None = None
        self.signing_key = RSAKey.generate_key(2048, parameters={"kid": "standin-1", "use": "sig"})
        self.notified: list[tuple[str, int]] = []  # (url, status) of every notification posted
        self.transcripts: dict[str, str] = {}  # a Teams meeting's join URL -> its WebVTT transcript
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what a test does to the providers ------------------------------------------------

    def box(self, address: str) -> Box:
        return self.boxes.setdefault(address, Box(address))

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def deliver(
        self,
        address: str,
        *,
        sender: str,
        to: list[str],
        subject: str,
        body: str = "",
        cc: list[str] | None = None,
        sent_at: datetime | None = None,
        message_id: str | None = None,
        categories: list[str] | None = None,
        thread: str = "",
    ) -> str:
        """A message arrives in the mailbox: in its inbox, or its sent items when it is from
        the mailbox's owner. Returns its Graph id."""
        sent_at = sent_at or datetime.now(UTC)
        with self.lock:
            number = self._next()
            graph_id = f"AAMk{number:08d}"
            folder = "sentitems" if sender == address else "inbox"
            resource = {
                "id": graph_id,
                "internetMessageId": message_id or f"<m{number}.{secrets.token_hex(4)}@standin.test>",
                "subject": subject,
                "from": {"emailAddress": {"name": sender.split("@")[0].title(), "address": sender}},
                "toRecipients": [{"emailAddress": {"address": a}} for a in to],
                "ccRecipients": [{"emailAddress": {"address": a}} for a in cc or []],
                "sentDateTime": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "receivedDateTime": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "body": {"contentType": "html", "content": f"<p>{body}</p>"},
                "conversationId": thread or f"conv-{number}",
                "categories": categories or [],
                "isDraft": False,
            }
            self.box(address).items[graph_id] = Item(number, folder, resource, gmail_id=f"{number:016x}")
        self._changed(address, folder)
        return graph_id

    def remove(self, address: str, graph_id: str) -> None:
        with self.lock:
            item = self.box(address).items[graph_id]
            item.removed, item.seq = True, self._next()

    def schedule(
        self,
        address: str,
        *,
        subject: str,
        start: datetime,
        minutes: int,
        attendees: list[str],
        uid: str | None = None,
        cancelled: bool = False,
        online: str = "",
    ) -> str:
        """A calendar event is made or changed (by its UID). Returns its Graph id."""
        with self.lock:
            box = self.box(address)
            existing = next((i for i in box.items.values() if uid and i.body.get("iCalUId") == uid), None)
            number = self._next()
            graph_id = existing.body["id"] if existing else f"AAEv{number:08d}"
            end = start + timedelta(minutes=minutes)
            resource = {
                "id": graph_id,
                "iCalUId": uid or f"040000008200E00074C5B7101A82E008{number:08d}",
                "subject": subject,
                "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
                "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
                "isCancelled": cancelled,
                "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
                "organizer": {"emailAddress": {"address": address}},
                "location": {"displayName": "Room 4"},
                "onlineMeeting": {"joinUrl": online} if online else None,
                "bodyPreview": "Agenda: pricing",
                "sensitivity": "normal",
            }
            box.items[graph_id] = Item(number, "calendar", resource, gmail_id=f"{number:016x}")
        self._changed(address, "calendar")
        return graph_id

    def expire_cursors(self) -> None:
        """Every delta link, history id and sync token given so far is too old now."""
        with self.lock:
            self.oldest_cursor = self._next()

    def revoke(self, address: str) -> None:
        """The user withdrew their consent: every token of theirs is dead."""
        with self.lock:
            self.refresh_tokens = {t: a for t, a in self.refresh_tokens.items() if a != address}
            self.access_tokens = {t: v for t, v in self.access_tokens.items() if v[0] != address}

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def grant(self, address: str) -> str:
        """A refresh token for the mailbox, as an authorization would give (for tests and the preview)."""
        with self.lock:
            token = secrets.token_urlsafe(24)
            self.refresh_tokens[token] = address
            return token

    # -- push -------------------------------------------------------------------------------

    def _changed(self, address: str, folder: str) -> None:
        """Graph's change notifications and Gmail's Pub/Sub pushes for a change, sent as the
        providers do: after the change, from another thread, not waiting on the receiver."""
        with self.lock:
            graph = [
                (sub["notificationUrl"], self._notification(sub_id, sub))
                for sub_id, sub in self.subscriptions.items()
                if sub["address"] == address and sub["folder"] == folder
            ]
            gmail = folder != "calendar" and address in self.watches and self.pubsub_push_url
            seq = self.seq
        for url, body in graph:
            threading.Thread(target=self._post, args=(url, body), daemon=True).start()
        if gmail:
            data = base64.b64encode(json.dumps({"emailAddress": address, "historyId": seq}).encode()).decode()
            body = {
                "message": {"data": data, "messageId": str(seq), "publishTime": datetime.now(UTC).isoformat()},
                "subscription": "projects/standin/subscriptions/inboxcrm",
            }
            headers = {"Authorization": f"Bearer {self.push_token()}"}
            threading.Thread(target=self._post, args=(self.pubsub_push_url, body, headers), daemon=True).start()

    def _notification(self, sub_id: str, sub: dict[str, Any], lifecycle: str | None = None) -> dict[str, Any]:
        note = {
            "subscriptionId": sub_id,
            "clientState": sub["clientState"],
            "subscriptionExpirationDateTime": sub["expirationDateTime"],
            "tenantId": "standin-tenant",
        }
        if lifecycle:
            note["lifecycleEvent"] = lifecycle
        else:
            note |= {"changeType": "created", "resource": sub["resource"]}
        return {"value": [note]}

    def _post(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        try:
            status = requests.post(url, json=body, headers=headers or {}, timeout=10).status_code
        except requests.RequestException:
            status = 0
        with self.lock:
            self.notified.append((url, status))

    def lifecycle(self, address: str, event: str) -> None:
        """A lifecycle notification (reauthorizationRequired, subscriptionRemoved, missed) for the
        mailbox's subscriptions."""
        with self.lock:
            posts = [
                (sub["lifecycleNotificationUrl"], self._notification(sub_id, sub, event))
                for sub_id, sub in self.subscriptions.items()
                if sub["address"] == address and sub.get("lifecycleNotificationUrl")
            ]
            if event == "subscriptionRemoved":
                for sub_id in [i for i, sub in self.subscriptions.items() if sub["address"] == address]:
                    del self.subscriptions[sub_id]
        for url, body in posts:
            self._post(url, body)

    def push_token(self, **overrides: Any) -> str:
        """The OIDC token Pub/Sub's push puts on its request, signed with the stand-in's key."""
        now = int(datetime.now(UTC).timestamp())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": self.pubsub_audience or self.pubsub_push_url,
            "sub": "1099",
            "email": PUSH_ACCOUNT,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **overrides,
        }
        return jwt.encode(
            {"alg": "RS256", "kid": "standin-1"}, {k: v for k, v in claims.items() if v is not None}, self.signing_key
        )

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/oauth2/v3/certs"

    def _subscribe(self, handler: Any, address: str, body: bytes) -> None:
        """``POST /subscriptions``: Graph first checks the notification URL echoes a validation
        token (within 10 seconds), then answers the subscription."""
        try:
            wanted = json.loads(body)
            url, resource = wanted["notificationUrl"], wanted["resource"]
        except (ValueError, KeyError, TypeError):
            return handler._send(400, {"error": {"code": "InvalidRequest"}})
        token = secrets.token_urlsafe(12)
        try:
            echo = requests.post(f"{url}?{urlencode({'validationToken': token})}", timeout=10)
        except requests.RequestException:
            echo = None
        if (
            echo is None
            or echo.status_code != 200
            or echo.text != token
            or not echo.headers.get("Content-Type", "").startswith("text/plain")
        ):
            return handler._send(
                400, {"error": {"code": "ValidationError", "message": "Subscription validation request failed."}}
            )
        folder = "calendar" if resource.endswith("/events") else resource.split("('")[1].split("')")[0]
        owner = resource.split("/")[1] if resource.startswith("users/") else address
        sub_id = secrets.token_hex(8)
        with self.lock:
            self.subscriptions[sub_id] = {**wanted, "address": owner, "folder": folder}
        handler._send(201, {"id": sub_id, **wanted})

    def _control(self, handler: Any, what: str, body: bytes) -> None:
        """What the preview asks of the stand-in (a sample mail arrives, a meeting is held): the
        same as a test's calls, over HTTP, since the preview's server and worker are other processes."""
        try:
            wanted = json.loads(body)
            if what == "deliver":
                sent = datetime.fromisoformat(wanted["sent_at"]) if wanted.get("sent_at") else None
                made = self.deliver(
                    wanted["address"],
                    sender=wanted["sender"],
                    to=list(wanted["to"]),
                    subject=str(wanted["subject"]),
                    body=str(wanted.get("body", "")),
                    sent_at=sent,
                )
            elif what == "schedule":
                made = self.schedule(
                    wanted["address"],
                    subject=str(wanted["subject"]),
                    start=datetime.fromisoformat(wanted["start"]),
                    minutes=int(wanted["minutes"]),
                    attendees=list(wanted["attendees"]),
                    online=str(wanted.get("online", "")),
                )
            else:
                return handler._send(404, {"error": "no such control"})
        except (ValueError, KeyError, TypeError):
            return handler._send(400, {"error": "bad control request"})
        return handler._send(200, {"id": made})

    # -- the server -------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's spelling
                standin._serve(self, "GET", b"")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                standin._serve(self, "POST", self.rfile.read(length))

            def do_PATCH(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                standin._serve(self, "PATCH", self.rfile.read(length))

        return Handler

    def _serve(self, handler: Any, method: str, body: bytes) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path == "/oauth2/v3/certs":
            return handler._send(200, {"keys": [self.signing_key.as_dict(private=False)]})
        if path.startswith("/standin/") and method == "POST":
            return self._control(handler, path.removeprefix("/standin/"), body)
        if path == "/v1.0/subscriptions" and method == "POST":
            with self.lock:
                address = self._bearer(handler)
            if address is None:
                return handler._send(401, {"error": {"code": "InvalidAuthenticationToken"}})
            return self._subscribe(handler, address, body)  # the handshake is made outside the lock
        with self.lock:
            self.requests.append(f"{method} {handler.path}")
            if self.throttle and "/token" not in path and "/authorize" not in path:
                wait = self.throttle.pop(0)
                return handler._send(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": str(wait)})
            if path.endswith("/authorize"):
                return self._authorize(handler, query)
            if path.endswith("/adminconsent"):  # a tenant admin approves at once
                answer = {"tenant": "standin-tenant", "admin_consent": "True", "state": query.get("state", "")}
                return _redirect(handler, f"{query.get('redirect_uri')}?{urlencode(answer)}")
            if path.endswith("/token"):
                form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
                return self._token(handler, form)
            address = self._bearer(handler)
            if address is None:
                return handler._send(401, {"error": {"code": "InvalidAuthenticationToken"}})
            if path.startswith("/v1.0/subscriptions/") and method == "PATCH":
                sub = self.subscriptions.get(path.rsplit("/", 1)[1])
                if sub is None:
                    return handler._send(404, {"error": {"code": "ResourceNotFound"}})
                sub["expirationDateTime"] = json.loads(body or b"{}").get(
                    "expirationDateTime", sub["expirationDateTime"]
                )
                return handler._send(200, {"id": path.rsplit("/", 1)[1], **sub})
            if path == "/gmail/v1/users/me/watch" and method == "POST":
                self.watches[address] = json.loads(body or b"{}").get("topicName", "")
                expiration = int((datetime.now(UTC) + timedelta(days=7)).timestamp() * 1000)
                return handler._send(200, {"historyId": str(self.seq), "expiration": str(expiration)})
            if path.startswith("/v1.0/"):
                return self._graph(handler, address, path.removeprefix("/v1.0/"), query)
            if path.startswith("/gmail/v1/users/me/"):
                return self._gmail(handler, address, path.removeprefix("/gmail/v1/users/me/"), query)
            if path == "/calendar/v3/calendars/primary/events":
                return self._calendar(handler, address, query)
            return handler._send(404, {"error": "not found"})

    def _authorize(self, handler: Any, query: dict[str, str]) -> None:
        """Signs the hinted user in at once and sends them back with a code (the consent screen
        a real provider shows is the user's business, not ours)."""
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return handler._send(400, {"error": "invalid_request", "error_description": "PKCE required"})
        code = secrets.token_urlsafe(16)
        self.codes[code] = (query.get("login_hint", ""), query["code_challenge"], query.get("redirect_uri", ""))
        _redirect(handler, f"{query.get('redirect_uri')}?{urlencode({'code': code, 'state': query.get('state', '')})}")

    def _issue(self, handler: Any, address: str, refresh: bool) -> None:
        access = secrets.token_urlsafe(24)
        self.access_tokens[access] = (address, datetime.now(UTC) + timedelta(seconds=self.token_lifetime))
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.token_lifetime}
        if refresh:
            token = secrets.token_urlsafe(24)
            self.refresh_tokens[token] = address
            body["refresh_token"] = token
        handler._send(200, body)

    def _token(self, handler: Any, form: dict[str, str]) -> None:
        grant = form.get("grant_type")
        if grant == "authorization_code":
            address, challenge, redirect = self.codes.pop(form.get("code", ""), ("", "", ""))
            verifier = form.get("code_verifier", "")
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not address or computed != challenge or redirect != form.get("redirect_uri"):
                return handler._send(400, {"error": "invalid_grant"})
            return self._issue(handler, address, True)
        if grant == "refresh_token":
            address = self.refresh_tokens.get(form.get("refresh_token", ""))
            if address is None:
                return handler._send(400, {"error": "invalid_grant", "error_description": "AADSTS70008: expired"})
            return self._issue(handler, address, False)
        if grant == "client_credentials":
            return self._issue(handler, "*", False)  # the tenant's: every mailbox
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            # The assertion's subject is the user delegated for (its signature is Google's business).
            try:
                payload = form.get("assertion", "").split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            except (IndexError, ValueError):
                return handler._send(400, {"error": "invalid_grant"})
            return self._issue(handler, str(claims.get("sub", "")), False)
        return handler._send(400, {"error": "unsupported_grant_type"})

    def _bearer(self, handler: Any) -> str | None:
        header = handler.headers.get("Authorization", "")
        found = self.access_tokens.get(header.removeprefix("Bearer "))
        if found is None or found[1] < datetime.now(UTC):
            return None
        return found[0]

    # -- Graph --------------------------------------------------------------------------------

    def _graph(self, handler: Any, address: str, path: str, query: dict[str, str]) -> None:
        if path.startswith("users/"):
            user, _, path = path.removeprefix("users/").partition("/")
            if address != "*" and address != user:
                return handler._send(403, {"error": {"code": "ErrorAccessDenied"}})
            address = user
        elif path.startswith("me"):
            path = path.removeprefix("me").lstrip("/")
        if path == "":
            return handler._send(200, {"mail": address, "userPrincipalName": address})
        if path.startswith("mailFolders/") and path.endswith("/messages/delta"):
            folder = path.split("/")[1]
            return self._delta(handler, address, folder, query)
        if path == "calendarView/delta":
            return self._delta(handler, address, "calendar", query)
        if path == "onlineMeetings":
            wanted = query.get("$filter", "").partition("eq '")[2].rstrip("'")
            ids = [f"MSo{i}" for i, url in enumerate(self.transcripts) if url == wanted]
            return handler._send(200, {"value": [{"id": i, "joinWebUrl": wanted} for i in ids]})
        if path.startswith("onlineMeetings/") and path.endswith("/transcripts"):
            return handler._send(200, {"value": [{"id": "tr-1", "createdDateTime": "2026-12-01T10:00:00Z"}]})
        if path.startswith("onlineMeetings/") and path.endswith("/transcripts/tr-1/content"):
            index = int(path.split("/")[1].removeprefix("MSo"))
            data = list(self.transcripts.values())[index].encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "text/vtt")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return None
        return handler._send(404, {"error": {"code": "ErrorItemNotFound"}})

    def _delta(self, handler: Any, address: str, folder: str, query: dict[str, str]) -> None:
        """Graph's delta: a round's pages (``$skiptoken``: where the round stands), then a
        ``$deltatoken`` with the sequence the round read to."""
        since, skip = 0, 0
        if "$deltatoken" in query:
            since = int(query["$deltatoken"])
            if since < self.oldest_cursor:
                return handler._send(410, {"error": {"code": "SyncStateNotFound", "message": "resync required"}})
        if "$skiptoken" in query:
            since, upto, skip = (int(x) for x in query["$skiptoken"].split("-"))
            if since and since < self.oldest_cursor:
                return handler._send(410, {"error": {"code": "SyncStateNotFound", "message": "resync required"}})
        else:
            upto = self.seq
        floor = query.get("$filter", "").partition(" ge ")[2]
        box = self.box(address)
        changed = sorted(
            (i for i in box.items.values() if i.folder == folder and since < i.seq <= upto), key=lambda i: i.seq
        )
        if floor and not since:
            changed = [i for i in changed if not i.removed and i.body.get("receivedDateTime", floor) >= floor]
        if not since:
            changed = [i for i in changed if not i.removed]
        size = int(handler.headers.get("Prefer", "").partition("maxpagesize=")[2] or self.page_size)
        size = min(size, self.page_size)
        page = changed[skip : skip + size]
        values = [{"id": i.body["id"], "@removed": {"reason": "deleted"}} if i.removed else i.body for i in page]
        base = f"http://{handler.headers.get('Host')}{urlsplit(handler.path).path}"
        keep = {k: v for k, v in query.items() if k not in ("$skiptoken", "$deltatoken")}
        if skip + size < len(changed):
            link = {"@odata.nextLink": f"{base}?{urlencode(keep | {'$skiptoken': f'{since}-{upto}-{skip + size}'})}"}
        else:
            link = {"@odata.deltaLink": f"{base}?{urlencode(keep | {'$deltatoken': str(upto)})}"}
        handler._send(200, {"value": values, **link})

    # -- Gmail and Calendar -------------------------------------------------------------------

    def _gmail_resource(self, box: Box, item: Item) -> dict[str, Any]:
        body = item.body
        headers = [
            {"name": "Message-ID", "value": body["internetMessageId"]},
            {"name": "Subject", "value": body["subject"]},
            {"name": "From", "value": body["from"]["emailAddress"]["address"]},
            {"name": "To", "value": ", ".join(r["emailAddress"]["address"] for r in body["toRecipients"])},
            {"name": "Cc", "value": ", ".join(r["emailAddress"]["address"] for r in body["ccRecipients"])},
        ]
        html = base64.urlsafe_b64encode(body["body"]["content"].encode()).decode().rstrip("=")
        sent = datetime.fromisoformat(body["sentDateTime"].replace("Z", "+00:00"))
        labels = ["SENT"] if item.folder == "sentitems" else ["INBOX"]
        if any(c.lower() == "private" for c in body.get("categories", [])):
            labels.append(box.private_label)
        return {
            "id": item.gmail_id,
            "threadId": body["conversationId"],
            "labelIds": labels,
            "historyId": str(item.seq),
            "internalDate": str(int(sent.timestamp() * 1000)),
            "payload": {"mimeType": "text/html", "headers": headers, "body": {"data": html}},
        }

    def _gmail(self, handler: Any, address: str, path: str, query: dict[str, str]) -> None:
        box = self.box(address)
        mail = sorted((i for i in box.items.values() if i.folder != "calendar"), key=lambda i: i.seq)
        if path == "profile":
            return handler._send(200, {"emailAddress": address, "historyId": str(self.seq)})
        if path == "labels":
            return handler._send(
                200, {"labels": [{"id": "INBOX", "name": "INBOX"}, {"id": box.private_label, "name": "Private"}]}
            )
        if path.startswith("messages/"):
            wanted = path.removeprefix("messages/")
            item = next((i for i in mail if i.gmail_id == wanted and not i.removed), None)
            if item is None:
                return handler._send(404, {"error": {"code": 404, "message": "Requested entity was not found."}})
            return handler._send(200, self._gmail_resource(box, item))
        if path == "messages":
            after = int(query.get("q", "after:0").removeprefix("after:") or 0)
            live = [
                i
                for i in reversed(mail)
                if not i.removed
                and datetime.fromisoformat(i.body["sentDateTime"].replace("Z", "+00:00")).timestamp() > after
            ]
            start = int(query.get("pageToken") or 0)
            chunk = live[start : start + self.page_size]
            answer: dict[str, Any] = {
                "messages": [{"id": i.gmail_id, "threadId": i.body["conversationId"]} for i in chunk]
            }
            if start + self.page_size < len(live):
                answer["nextPageToken"] = str(start + self.page_size)
            answer["resultSizeEstimate"] = len(live)
            return handler._send(200, answer)
        if path == "history":
            since = int(query.get("startHistoryId") or 0)
            if since < self.oldest_cursor:
                return handler._send(404, {"error": {"code": 404, "message": "Requested entity was not found."}})
            added = [i for i in mail if i.seq > since and not i.removed]
            start = int(query.get("pageToken") or 0)
            chunk = added[start : start + self.page_size]
            answer = {
                "history": [{"id": str(i.seq), "messagesAdded": [{"message": {"id": i.gmail_id}}]} for i in chunk],
                "historyId": str(self.seq),
            }
            if start + self.page_size < len(added):
                answer["nextPageToken"] = str(start + self.page_size)
            return handler._send(200, answer)
        return handler._send(404, {"error": {"code": 404}})

    def _calendar(self, handler: Any, address: str, query: dict[str, str]) -> None:
        box = self.box(address)
        since = 0
        if "syncToken" in query:
            since = int(query["syncToken"])
            if since < self.oldest_cursor:
                return handler._send(410, {"error": {"code": 410, "message": "Sync token is no longer valid."}})
        events = sorted(
            (i for i in box.items.values() if i.folder == "calendar" and i.seq > since), key=lambda i: i.seq
        )
        start = int(query.get("pageToken") or 0)
        chunk = events[start : start + self.page_size]
        items = []
        for item in chunk:
            body = item.body
            items.append(
                {
                    "id": item.gmail_id,
                    "iCalUID": body["iCalUId"],
                    "status": "cancelled" if body["isCancelled"] or item.removed else "confirmed",
                    "summary": body["subject"],
                    "start": {"dateTime": body["start"]["dateTime"][:19] + "Z"},
                    "end": {"dateTime": body["end"]["dateTime"][:19] + "Z"},
                    "attendees": [{"email": a["emailAddress"]["address"]} for a in body["attendees"]],
                    "organizer": {"email": address, "self": True},
                    "location": body["location"]["displayName"],
                    "description": body["bodyPreview"],
                    "visibility": "default",
                }
            )
        answer: dict[str, Any] = {"items": items}
        if start + self.page_size < len(events):
            answer["nextPageToken"] = str(start + self.page_size)
        else:
            answer["nextSyncToken"] = str(self.seq)
        handler._send(200, answer)


def _redirect(handler: Any, url: str) -> None:
    """A 302 to ``url``: where a sign-in page sends the browser back."""
    handler.send_response(302)
    handler.send_header("Location", url)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def main() -> None:
    """``python -m services.capture.standin --port 8765``: the stand-in ``make run`` starts beside
    the server and the worker, for the preview's captured mailbox."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    standin = StandIn(port=port)
    print(f"stand-in for Microsoft and Google on {standin.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.close()


if __name__ == "__main__":
    main()
