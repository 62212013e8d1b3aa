"""The open Gmail message, read through the Gmail API (``users.messages.get``).

A Gmail add-on is not handed the message: the event names it (``gmail.messageId``) and gives
a short-lived access token for it (``gmail.accessToken``), to be sent with the user's OAuth
token. ``fetch_message`` asks the API for the message in its ``full`` format and
``parse_message`` turns the answer into the same headers-and-body item the Outlook pane hands
to ``log_email``: one message, one activity, whichever client logged it (the RFC 822
Message-ID is the external id in both).

Everything from the API is untrusted: headers may be missing or malformed, bodies nested
several multiparts deep, base64url without padding, HTML only.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import urllib3

from services.mail.text import html_to_text, is_valid_address, parse_address_header

TIMEOUT_SECONDS = 5
MAX_SUBJECT = 500
MAX_BODY = 1_000_000
MAX_RECIPIENTS = 50


class GmailUnavailable(Exception):
    """The Gmail API did not give the message: an error status, a time-out, or an answer that
    is not a message. The text is for the user's card."""


@dataclass
class GmailMessage:
    """A message as the add-on reads it: what ``log_email`` and the context need."""

    message_id: str  # Gmail's id, for the API
    thread_id: str
    internet_message_id: str  # RFC 822 Message-ID: the activity's external id
    subject: str
    from_address: str
    from_name: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    sent_at: str = ""  # ISO 8601, UTC
    body_html: str | None = None
    body_text: str | None = None
    is_private: bool = False  # labelled or categorised Private by the rep (``services.capture``)

    @property
    def addresses(self) -> list[str]:
        return [self.from_address, *self.to, *self.cc]

    def as_email_item(self) -> dict[str, Any]:
        """The fields ``services.mail.activities.log_email`` takes."""
        item = {k: v for k, v in asdict(self).items() if k not in ("message_id", "thread_id") and v not in (None, "")}
        item["source"] = "gmail"
        if self.thread_id:
            item["conversation_id"] = self.thread_id  # Gmail's thread, as Outlook's conversation
        return item


# One pool of keep-alive connections for the process (urllib3's pools are thread-safe): a card
# should not pay a new TLS handshake with Google for every message opened. HTTPS_PROXY, where
# set, is honoured.
_proxy = urllib.request.getproxies().get("https")
_http = urllib3.ProxyManager(_proxy) if _proxy else urllib3.PoolManager()


def fetch_message(
    base_url: str, message_id: str, oauth_token: str, access_token: str, *, timeout: float | None = None
) -> GmailMessage:
    """``GET {base}/gmail/v1/users/me/messages/{id}?format=full`` with the user's OAuth token and
    the event's message access token (``X-Goog-Gmail-Access-Token``), as Google documents for
    add-ons; the answer parsed."""
    url = f"{base_url.rstrip('/')}/gmail/v1/users/me/messages/{quote(message_id, safe='')}?format=full"
    try:
        response = _http.request(
            "GET",
            url,
            timeout=urllib3.Timeout(total=timeout or TIMEOUT_SECONDS),
            retries=False,
            headers={"Authorization": f"Bearer {oauth_token}", "X-Goog-Gmail-Access-Token": access_token},
        )
    except urllib3.exceptions.HTTPError as error:
        raise GmailUnavailable("Gmail did not answer in time. Try again in a moment.") from error
    if response.status in (401, 403):
        raise GmailUnavailable("Gmail refused to show this message to Inbox CRM. Open the message again.")
    if response.status == 404:
        raise GmailUnavailable("Gmail has no such message (it may have been deleted).")
    if response.status != 200:
        raise GmailUnavailable(f"Gmail answered with an error ({response.status}). Try again in a moment.")
    try:
        return parse_message(json.loads(response.data))
    except ValueError as error:  # json's errors (UnicodeDecodeError too) are ValueErrors
        raise GmailUnavailable("Gmail's answer was not a message Inbox CRM can read.") from error


def parse_message(message: Any) -> GmailMessage:
    """A ``users.messages.get`` resource (``full`` or ``metadata`` format) as a ``GmailMessage``;
    ``ValueError`` when it is not one."""
    if not isinstance(message, dict) or not isinstance(message.get("payload"), dict):
        raise ValueError("not a Gmail message resource")
    payload = message["payload"]
    headers = _headers(payload)
    senders = _addresses(headers.get("from", ""))
    from_name, from_address = senders[0] if senders else ("", "")
    html, text = _bodies(payload)
    if html and len(html) > MAX_BODY:
        html = html[:MAX_BODY]
    return GmailMessage(
        message_id=str(message.get("id") or ""),
        thread_id=str(message.get("threadId") or ""),
        internet_message_id=headers.get("message-id", "").strip()[:512],
        subject=headers.get("subject", "").strip()[:MAX_SUBJECT],
        from_address=from_address,
        from_name=from_name[:200],
        to=[a for _, a in _addresses(headers.get("to", ""))][:MAX_RECIPIENTS],
        cc=[a for _, a in _addresses(headers.get("cc", ""))][:MAX_RECIPIENTS],
        sent_at=_sent_at(headers.get("date", ""), message.get("internalDate")),
        body_html=html,
        body_text=(text[:200_000] if text else None) or (html_to_text(html)[:200_000] if html else None),
    )


def _headers(payload: dict[str, Any]) -> dict[str, str]:
    """The message's headers by lower-case name (the first of each), encoded words decoded."""
    found: dict[str, str] = {}
    for header in payload.get("headers") or []:
        if not isinstance(header, dict):
            continue
        name, value = header.get("name"), header.get("value")
        if isinstance(name, str) and isinstance(value, str) and name.lower() not in found:
            found[name.lower()] = _decoded(value)
    return found


def _decoded(value: str) -> str:
    """A header value with any RFC 2047 encoded words decoded (the API usually has done it)."""
    if "=?" not in value:
        return value.replace("\x00", "")
    try:
        return str(make_header(decode_header(value))).replace("\x00", "")
    except (ValueError, LookupError, UnicodeError):
        return value.replace("\x00", "")


def _addresses(value: str) -> list[tuple[str, str]]:
    """(display name, normalised address) of every valid address in a header."""
    return [(name, address) for name, address in parse_address_header(value) if is_valid_address(address)]


def _sent_at(date_header: str, internal_date: Any) -> str:
    when: datetime | None = None
    if isinstance(internal_date, (str, int)) and str(internal_date).isdigit():
        when = datetime.fromtimestamp(int(internal_date) / 1000, tz=timezone.utc)
    elif date_header:
        try:
            when = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
    if when is None or not 1900 <= when.year <= 2199:
        return ""
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _bodies(part: dict[str, Any], depth: int = 0) -> tuple[str | None, str | None]:
    """The first text/html and text/plain bodies, depth first through nested multiparts;
    attachments (parts with a filename) skipped."""
    if depth > 20:
        return None, None
    mime = str(part.get("mimeType") or "").lower()
    if mime.startswith("multipart/"):
        html = text = None
        for child in part.get("parts") or []:
            if isinstance(child, dict):
                child_html, child_text = _bodies(child, depth + 1)
                html, text = html or child_html, text or child_text
            if html and text:
                break
        return html, text
    if part.get("filename"):
        return None, None
    data = (part.get("body") or {}).get("data") if isinstance(part.get("body"), dict) else None
    if not isinstance(data, str) or mime not in ("text/html", "text/plain"):
        return None, None
    decoded = _b64url(data)
    return (decoded, None) if mime == "text/html" else (None, decoded)


def _b64url(data: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", errors="replace").replace("\x00", "")
