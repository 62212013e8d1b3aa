"""E-mail addresses, domains and untrusted mail bodies.

Every body that reaches the store came from outside: it is sanitized with nh3 (the Rust
``ammonia`` sanitizer) before it is stored, and templates escape it again when shown.
"""

from __future__ import annotations

import html
import re
from email.utils import getaddresses

import nh3

from services.models import ADDRESS_LENGTH

# Mail domains that say nothing about the company a sender works for: a sender from one of
# these gets a contact but never an account named after the domain.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "yandex.com",
        "yandex.ru",
        "zoho.com",
        "fastmail.com",
        "hey.com",
        "qq.com",
        "163.com",
    }
)

# Deliberately strict: one @, a local part without spaces or angle brackets, a dotted domain
# of letters, digits and hyphens. Anything stranger is refused with a message, not guessed at.
_ADDRESS = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "div",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}


def normalise_address(value: str) -> str:
    return value.strip().lower()


def is_valid_address(value: str) -> bool:
    return len(value) <= ADDRESS_LENGTH and bool(_ADDRESS.match(value))


# Mailboxes no person reads: bounces and notifications. Mail from them is nothing to log, and
# nobody to add (``services.mail.context``, ``services.mail.activities.log_email``).
_AUTOMATED = re.compile(r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)(\+.*)?$")


def is_automated_address(address: str) -> bool:
    return bool(_AUTOMATED.match(normalise_address(address).partition("@")[0]))


def sender_problem(address: str | None) -> str | None:
    """Why a mail's sender is nothing to log or add, in words the pane shows; None when the
    sender is a person's valid address."""
    address = normalise_address(address or "")
    if not address:
        return "This email has no sender, so there is nothing to log or add."
    if not is_valid_address(address):
        return (
            f"The sender's address ({address[:100]}) is not a valid e-mail address, so there is nothing to log or add."
        )
    if is_automated_address(address):
        return f"This email comes from an automated sender ({address}): there is nothing to log or add."
    return None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def is_public_domain(domain: str) -> bool:
    return domain in PUBLIC_MAIL_DOMAINS


def parse_address_header(value: str) -> list[tuple[str, str]]:
    """``'Ann <ann@x.com>, bob@y.com'`` → ``[('Ann', 'ann@x.com'), ('', 'bob@y.com')]``."""
    return [(name.strip(), normalise_address(addr)) for name, addr in getaddresses([value]) if addr]


def company_from_domain(domain: str) -> str:
    """A guess at a company's name from its mail domain: ``granite-robotics.com`` → ``Granite Robotics``."""
    return domain.split(".")[-2].replace("-", " ").title() if "." in domain else domain


def name_from_address(address: str) -> str:
    """A readable guess at a person's name from the local part: ``jane.doe`` → ``Jane Doe``."""
    local = address.partition("@")[0]
    parts = [p for p in re.split(r"[._-]+", local) if p and not p.isdigit()]
    return " ".join(p.capitalize() for p in parts) or local


def phone_key(number: str | None) -> str | None:
    """A phone number as numbers are compared, however each was typed ("+1 617 555 0100" is
    "(617) 555-0100"): its last ten digits; None for one of fewer than seven. A stored number
    worth comparing holds the key's last four digits as typed (what a query narrows by)."""
    digits = "".join(ch for ch in number or "" if ch.isdigit())
    return digits[-10:] if len(digits) >= 7 else None


def sanitize_html(value: str | None) -> str | None:
    if value is None:
        return None
    return nh3.clean(
        value, tags=ALLOWED_TAGS, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow"
    )


def html_to_text(value: str | None) -> str | None:
    """Clean text from an HTML body: no tags, no scripts or styles, whitespace folded."""
    if value is None:
        return None
    stripped = nh3.clean(value, tags={"br", "p", "div", "li", "tr"}, clean_content_tags={"script", "style"})
    stripped = re.sub(r"<(br|/p|/div|/li|/tr)[^>]*>", "\n", stripped, flags=re.I)
    stripped = re.sub(r"<[^>]+>", "", stripped)
    text = html.unescape(stripped)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
