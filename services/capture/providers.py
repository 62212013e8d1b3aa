"""The two providers' change feeds, as their documentation shows them, behind one shape.

* **Microsoft Graph**: ``mailFolders/{inbox,sentitems}/messages/delta`` and
  ``calendarView/delta``: pages linked by ``@odata.nextLink``, ending in an ``@odata.deltaLink``
  that is the next pass's start; removed items come as ``@removed``; an expired link answers
  410 (``syncStateNotFound``, ``resyncRequired``).
* **Gmail**: a first pass lists ``users.messages`` since the backfill's start, then
  ``users.history.list`` from the history id taken before it; a history id too old answers 404.
* **Google Calendar**: ``events.list`` with ``singleEvents``, then by ``nextSyncToken``; an
  expired token answers 410.

Every answer is untrusted: a field of the wrong type is skipped, never a crash. Throttling (429,
503) raises ``Throttled`` with the ``Retry-After`` the provider asked for; 401 is answered once
by refreshing the access token (``Api``), and a refresh refused as ``invalid_grant`` raises
``ConsentRevoked``: the mailbox stops until it is connected again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from services.capture.gmail import GmailMessage, parse_message
from services.mail.text import html_to_text, is_valid_address

TIMEOUT = (5, 30)
PAGE_SIZE = 50
MAIL_SCOPES = {
    "microsoft": "offline_access openid email https://graph.microsoft.com/Mail.Read https://graph.microsoft.com/Calendars.Read"
    " https://graph.microsoft.com/OnlineMeetings.Read https://graph.microsoft.com/OnlineMeetingTranscript.Read.All",
    "google": "openid email https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/calendar.readonly",
}
MAX_TEXT = 2_000_000  # characters of a non-JSON answer kept (a transcript)
PRIVATE = "private"  # the category (Outlook) or label (Gmail) a rep puts on a mail kept to themselves


class ProviderError(Exception):
    """The provider failed for now (5xx, a time-out, an answer that is not what it documents):
    the next pass tries again. The text is shown to the rep and the admin."""


class Throttled(ProviderError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"The provider asked us to wait {round(seconds)} s.")
        self.seconds = seconds


class CursorExpired(ProviderError):
    """The saved delta link, history id or sync token is too old: read the folder again whole."""


class ConsentRevoked(Exception):
    """The refresh token is dead (consent revoked, password changed, expired): capture stops."""


@dataclass(frozen=True)
class Endpoints:
    """Where the providers answer, and this deployment's OAuth apps. The defaults are Microsoft's
    and Google's own hosts; the tests and the preview point them at local stand-ins."""

    microsoft_login: str = "https://login.microsoftonline.com"
    graph: str = "https://graph.microsoft.com"
    google_authorize: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token: str = "https://oauth2.googleapis.com/token"
    gmail: str = "https://gmail.googleapis.com"
    calendar: str = "https://www.googleapis.com"
    microsoft_client_id: str = ""
    microsoft_client_secret: str = ""
    google_client_id: str = ""
    google_client_secret: str = ""

    def configured(self, provider: str) -> bool:
        return bool(getattr(self, f"{provider}_client_id"))

    def authorize_url(self, provider: str) -> str:
        if provider == "microsoft":
            return f"{self.microsoft_login}/common/oauth2/v2.0/authorize"
        return self.google_authorize

    def token_url(self, provider: str, tenant: str = "common") -> str:
        if provider == "microsoft":
            return f"{self.microsoft_login}/{quote(tenant, safe='')}/oauth2/v2.0/token"
        return self.google_token

    def client(self, provider: str) -> tuple[str, str]:
        return getattr(self, f"{provider}_client_id"), getattr(self, f"{provider}_client_secret")


@dataclass
class Token:
    access: str
    expires_at: datetime
    refresh: str | None = None  # a new refresh token, when the provider rotated it


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "")
    if value.strip().isdigit():
        return min(float(value), 3600.0)
    try:
        when = parsedate_to_datetime(value)
        return min(max((when - datetime.now(UTC)).total_seconds(), 1.0), 3600.0)
    except (TypeError, ValueError, IndexError):
        return 30.0


def post_token(http: requests.Session, url: str, form: dict[str, str], now: datetime) -> Token:
    """An OAuth token endpoint's answer (RFC 6749 section 5): a token, or why not."""
    try:
        response = http.post(url, data=form, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except requests.RequestException as error:
        raise ProviderError("The sign-in service did not answer.") from error
    if response.status_code in (429, 503):
        raise Throttled(_retry_after(response))
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code in (400, 401) and body.get("error") in (
        "invalid_grant",
        "unauthorized_client",
        "invalid_client",
    ):
        raise ConsentRevoked(
            "The mailbox's consent was revoked or its sign-in expired: connect it again."
            if body.get("error") == "invalid_grant"
            else "This server's app is no longer allowed to read the mailbox: ask an admin."
        )
    access = body.get("access_token")
    if response.status_code != 200 or not isinstance(access, str) or not access:
        raise ProviderError(f"The sign-in service answered {response.status_code}.")
    expires = body.get("expires_in")
    seconds = int(expires) if isinstance(expires, (int, str)) and str(expires).isdigit() else 3600
    refresh = body.get("refresh_token")
    return Token(access, now + timedelta(seconds=seconds), refresh if isinstance(refresh, str) and refresh else None)


class Api:
    """One mailbox's calls: the bearer token, refreshed once on a 401, and the provider's
    answers turned into our errors."""

    def __init__(self, http: requests.Session, token: Callable[[bool], str]) -> None:
        self.http = http
        self._token = token  # token(refresh) -> a usable access token

    def get(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return self.send("GET", url, headers=headers)

    def get_text(self, url: str) -> str:
        """A resource that is not JSON (a transcript's WebVTT)."""
        return self.send("GET", url, text=True)["text"]

    def send(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        text: bool = False,
    ) -> dict[str, Any]:
        for attempt in (0, 1):
            bearer = self._token(attempt == 1)
            try:
                response = self.http.request(
                    method,
                    url,
                    json=body,
                    headers={"Authorization": f"Bearer {bearer}", **(headers or {})},
                    timeout=TIMEOUT,
                )
            except requests.RequestException as error:
                raise ProviderError("The mail provider did not answer in time.") from error
            if response.status_code == 401 and attempt == 0:
                continue
            return self._answer(response, text)
        raise ConsentRevoked("The mail provider refused the mailbox's sign-in: connect it again.")

    @staticmethod
    def _answer(response: requests.Response, text: bool = False) -> dict[str, Any]:
        status = response.status_code
        if status in (429, 503):
            raise Throttled(_retry_after(response))
        if status == 410:
            raise CursorExpired("The provider asked for a full resync.")
        if status == 401:
            raise ConsentRevoked("The mail provider refused the mailbox's sign-in: connect it again.")
        if status == 403:
            raise ConsentRevoked("The mail provider no longer lets Inbox CRM read this mailbox.")
        if status == 404:
            raise CursorExpired("The provider no longer knows where the last pass stopped.")
        if status == 204:
            return {}
        if status not in (200, 201):
            raise ProviderError(f"The mail provider answered {status}.")
        if text:
            return {"text": response.text[:MAX_TEXT]}
        try:
            body = response.json()
        except ValueError as error:
            raise ProviderError("The mail provider's answer was not JSON.") from error
        if not isinstance(body, dict):
            raise ProviderError("The mail provider's answer was not an object.")
        return body


# -- what a feed hands the capture ------------------------------------------------------------


@dataclass
class Event:
    """A calendar event, as both providers describe one."""

    uid: str  # the iCalendar UID (with the occurrence's start for a recurring one's instance)
    provider_id: str
    subject: str
    start: datetime
    end: datetime
    cancelled: bool
    attendees: list[str]
    organizer: str
    location: str = ""
    online_link: str = ""
    agenda: str = ""
    private: bool = False


@dataclass
class Page:
    """One page of a feed: its messages and events, and where the feed stands after it."""

    messages: list[GmailMessage] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    removed: int = 0
    page: str | None = None  # the next page of the pass under way; None when the pass ended
    cursor: str | None = None  # the next pass's start, when this page ended the pass

    def linked(self, following: Any, cursor: Any, what: str) -> Page:
        """Where the feed goes on: its next page, else (the pass over) the next pass's start;
        an answer with neither is not one the provider documents."""
        if isinstance(following, str) and following:
            self.page = following
        elif isinstance(cursor, str) and cursor:
            self.cursor = cursor
        else:
            raise ProviderError(f"{what} had neither a next page nor where to start the next pass.")
        return self


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _text(value: Any, limit: int) -> str:
    return value.replace("\x00", "")[:limit] if isinstance(value, str) else ""


# -- Microsoft Graph --------------------------------------------------------------------------

GRAPH_MESSAGE_FIELDS = (
    "id,internetMessageId,subject,from,toRecipients,ccRecipients,sentDateTime,receivedDateTime,"
    "body,conversationId,categories,isDraft"
)


def graph_user(address: str | None) -> str:
    """The mailbox's path: ``me`` with the rep's own token, ``users/{address}`` with the tenant's."""
    return f"users/{quote(address, safe='@')}" if address else "me"


def graph_first_url(base: str, user: str, folder: str, since: datetime, now: datetime) -> str:
    since_text = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if folder == "calendar":
        until = (now + timedelta(days=365)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = urlencode({"startDateTime": since_text, "endDateTime": until})
        return f"{base}/v1.0/{user}/calendarView/delta?{query}"
    query = urlencode({"$select": GRAPH_MESSAGE_FIELDS, "$filter": f"receivedDateTime ge {since_text}"})
    return f"{base}/v1.0/{user}/mailFolders/{folder}/messages/delta?{query}"


def graph_page(api: Api, url: str, folder: str) -> Page:
    body = api.get(url, {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"})
    page = Page()
    for item in body.get("value") or []:
        if not isinstance(item, dict):
            continue
        if "@removed" in item:
            if folder == "calendar" and isinstance(item.get("id"), str):
                page.events.append(_removed_event(item["id"]))
            else:
                page.removed += 1
            continue
        if folder == "calendar":
            if (event := graph_event(item)) is not None:
                page.events.append(event)
        elif (message := graph_message(item)) is not None:
            page.messages.append(message)
    return page.linked(body.get("@odata.nextLink"), body.get("@odata.deltaLink"), "Graph's page")


def _graph_address(value: Any) -> tuple[str, str]:
    email = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(email, dict):
        return "", ""
    address = _text(email.get("address"), 254).strip().lower()
    return _text(email.get("name"), 200), address if is_valid_address(address) else ""


def _graph_addresses(values: Any) -> list[str]:
    found = [_graph_address(v)[1] for v in values] if isinstance(values, list) else []
    return [a for a in found if a][:50]


def graph_message(item: dict[str, Any]) -> GmailMessage | None:
    """A Graph ``message`` as the pane's mail item; None for a draft or one with no sender."""
    if item.get("isDraft") is True:
        return None
    name, sender = _graph_address(item.get("from"))
    message_id = _text(item.get("internetMessageId"), 512).strip()
    if not sender or not message_id:
        return None
    body = item.get("body") if isinstance(item.get("body"), dict) else {}
    content = _text(body.get("content"), 1_000_000)
    html = content if str(body.get("contentType", "")).lower() == "html" else None
    text = None if html else content
    sent = _iso(item.get("sentDateTime")) or _iso(item.get("receivedDateTime"))
    categories = item.get("categories") if isinstance(item.get("categories"), list) else []
    return GmailMessage(
        message_id=_text(item.get("id"), 500),
        thread_id=_text(item.get("conversationId"), 255),
        internet_message_id=message_id,
        subject=_text(item.get("subject"), 500).strip(),
        from_address=sender,
        from_name=name,
        to=_graph_addresses(item.get("toRecipients")),
        cc=_graph_addresses(item.get("ccRecipients")),
        sent_at=sent.isoformat(timespec="seconds") if sent else "",
        body_html=html,
        body_text=(text[:200_000] if text else None) or (html_to_text(html)[:200_000] if html else None),
        is_private=any(isinstance(c, str) and c.strip().lower() == PRIVATE for c in categories),
    )


def _graph_time(value: Any) -> datetime | None:
    """Graph's ``dateTimeTimeZone``: a local time and its zone; the delta answers in UTC."""
    if not isinstance(value, dict):
        return None
    when = _iso(value.get("dateTime"))
    zone = value.get("timeZone")
    if when is not None and isinstance(zone, str) and zone not in ("UTC", "tzone://Microsoft/Utc"):
        try:
            when = when.replace(tzinfo=ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return when


def graph_event(item: dict[str, Any]) -> Event | None:
    start, end = _graph_time(item.get("start")), _graph_time(item.get("end"))
    uid = _text(item.get("iCalUId"), 400) or _text(item.get("id"), 400)
    if start is None or not uid:
        return None
    location = item.get("location") if isinstance(item.get("location"), dict) else {}
    online = item.get("onlineMeeting") if isinstance(item.get("onlineMeeting"), dict) else {}
    return Event(
        uid=uid,
        provider_id=_text(item.get("id"), 400),
        subject=_text(item.get("subject"), 500).strip(),
        start=start,
        end=end if end and end >= start else start,
        cancelled=item.get("isCancelled") is True,
        attendees=[a for a in (_graph_address(v)[1] for v in item.get("attendees") or [] if isinstance(v, dict)) if a][
            :200
        ],
        organizer=_graph_address(item.get("organizer"))[1],
        location=_text(location.get("displayName"), 300),
        online_link=_text(online.get("joinUrl"), 1000) or _text(item.get("onlineMeetingUrl"), 1000),
        agenda=_text(item.get("bodyPreview"), 2000),
        private=str(item.get("sensitivity", "")).lower() == PRIVATE,
    )


def _removed_event(provider_id: str) -> Event:
    """A calendar event the delta says is gone: cancelled (we keep it, marked)."""
    moment = datetime.min.replace(tzinfo=UTC)
    return Event(
        uid="",
        provider_id=provider_id,
        subject="",
        start=moment,
        end=moment,
        cancelled=True,
        attendees=[],
        organizer="",
    )


# -- Gmail and Google Calendar ----------------------------------------------------------------


def gmail_private_label(api: Api, base: str) -> str | None:
    body = api.get(f"{base}/gmail/v1/users/me/labels")
    for label in body.get("labels") or []:
        if isinstance(label, dict) and str(label.get("name", "")).strip().lower() == PRIVATE:
            return str(label.get("id"))
    return None


def gmail_history_id(api: Api, base: str) -> str:
    history = api.get(f"{base}/gmail/v1/users/me/profile").get("historyId")
    if not isinstance(history, (str, int)) or not str(history).isdigit():
        raise ProviderError("Gmail's profile had no history id.")
    return str(history)


def gmail_message(api: Api, base: str, message_id: str, private_label: str | None) -> GmailMessage | None:
    try:
        resource = api.get(f"{base}/gmail/v1/users/me/messages/{quote(message_id, safe='')}?format=full")
    except CursorExpired:
        return None  # deleted between the list and the read
    labels = resource.get("labelIds") if isinstance(resource.get("labelIds"), list) else []
    if "DRAFT" in labels:
        return None
    try:
        message = parse_message(resource)
    except ValueError:
        return None
    if not message.from_address or not message.internet_message_id:
        return None
    message.is_private = private_label is not None and private_label in labels
    return message


def gmail_page(api: Api, base: str, page: str, cursor: str, since: datetime) -> Page:
    """One page of Gmail's feed. ``page`` is ``list:<token>`` during a first pass (the mail since
    ``since``; ``cursor`` is the history id taken before it began, the next pass's start), and
    ``history:<token>`` or empty during a later one (``users.history.list`` from ``cursor``)."""
    private = gmail_private_label(api, base)
    result = Page()
    listing = page.startswith("list:")
    if listing:
        query: dict[str, Any] = {"q": f"after:{int(since.timestamp())}", "maxResults": PAGE_SIZE}
        url = f"{base}/gmail/v1/users/me/messages"
    else:
        query = {"startHistoryId": cursor, "historyTypes": "messageAdded", "maxResults": PAGE_SIZE}
        url = f"{base}/gmail/v1/users/me/history"
    if token := page.partition(":")[2]:
        query["pageToken"] = token
    body = api.get(f"{url}?{urlencode(query)}")
    if listing:
        ids = [m.get("id") for m in body.get("messages") or [] if isinstance(m, dict)]
    else:
        ids = [
            added["message"].get("id")
            for record in body.get("history") or []
            if isinstance(record, dict)
            for added in record.get("messagesAdded") or []
            if isinstance(added, dict) and isinstance(added.get("message"), dict)
        ]
    for message_id in dict.fromkeys(i for i in ids if isinstance(i, str) and i):
        if (message := gmail_message(api, base, message_id, private)) is not None:
            result.messages.append(message)
    following = body.get("nextPageToken")
    if isinstance(following, str) and following:
        result.page = ("list:" if listing else "history:") + following
    elif not listing and isinstance(body.get("historyId"), (str, int)) and str(body["historyId"]).isdigit():
        result.cursor = str(body["historyId"])
    else:
        result.cursor = cursor
    return result


def google_event(item: dict[str, Any]) -> Event | None:
    def when(value: Any) -> datetime | None:
        if not isinstance(value, dict):
            return None
        return _iso(value.get("dateTime")) or _iso(
            (value.get("date") or "") + "T00:00:00+00:00" if value.get("date") else None
        )

    uid = _text(item.get("iCalUID"), 300) or _text(item.get("id"), 300)
    original = item.get("originalStartTime")
    if isinstance(original, dict) and (occurrence := when(original)):
        uid = f"{uid}/{occurrence.isoformat()}"  # a recurring event's instances share one UID
    cancelled = item.get("status") == "cancelled"
    start, end = when(item.get("start")), when(item.get("end"))
    if not uid or (start is None and not cancelled):
        return None
    start = start or datetime.min.replace(tzinfo=UTC)
    attendees = [
        address
        for a in item.get("attendees") or []
        if isinstance(a, dict) and is_valid_address(address := _text(a.get("email"), 254).strip().lower())
    ][:200]
    organizer = item.get("organizer") if isinstance(item.get("organizer"), dict) else {}
    return Event(
        uid=uid,
        provider_id=_text(item.get("id"), 400),
        subject=_text(item.get("summary"), 500).strip(),
        start=start,
        end=end if end and end >= start else start,
        cancelled=cancelled,
        attendees=attendees,
        organizer=_text(organizer.get("email"), 254).lower(),
        location=_text(item.get("location"), 300),
        online_link=_text(item.get("hangoutLink"), 1000),
        agenda=_text(item.get("description"), 2000),
        private=item.get("visibility") in ("private", "confidential"),
    )


def calendar_page(api: Api, base: str, page: str | None, cursor: str | None, since: datetime) -> Page:
    query: dict[str, Any] = {"singleEvents": "true", "maxResults": 250, "showDeleted": "true"}
    if cursor:
        query["syncToken"] = cursor
    else:
        query["timeMin"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if page:
        query["pageToken"] = page
    body = api.get(f"{base}/calendar/v3/calendars/primary/events?{urlencode(query)}")
    result = Page(
        events=[e for item in body.get("items") or [] if isinstance(item, dict) and (e := google_event(item))]
    )
    return result.linked(body.get("nextPageToken"), body.get("nextSyncToken"), "Calendar's page")
