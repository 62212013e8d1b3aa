"""The Outlook manifests, made for one base URL.

The XML (add-in-only) manifest is what every Outlook installs today; the unified JSON
manifest is Microsoft 365's newer form. Both name the same surfaces (read, compose, meeting
organizer and attendee), the same pinnable task pane, and the app registration used for
single sign-on.

The Gmail add-on has no manifest file of its own: ``gmail_deployment`` is the deployment
``gcloud workspace-add-ons deployments create`` takes (its ``addOns`` part is Google's
``AddOns`` message), naming our HTTP endpoints and the narrowest scopes that work.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template

VERSION = "1.0.0"
MAILBOX_VERSION = "1.5"
# Logging a message as it is sent: Outlook's OnMessageSend launch event came with Mailbox 1.12.
# Older clients skip it, and log a marked message when it is opened from Sent Items.
SEND_EVENT_VERSION = "1.12"
SEND_HANDLER = "onMessageSendHandler"  # static/js/launchevent.js associates this name
UNIFIED_MANIFEST_VERSION = "1.24"
SURFACES = [
    ("MessageReadCommandSurface", "messageRead"),
    ("MessageComposeCommandSurface", "messageCompose"),
    ("AppointmentOrganizerCommandSurface", "appointmentOrganizer"),
    ("AppointmentAttendeeCommandSurface", "appointmentAttendee"),
]


class ManifestError(ValueError):
    pass


def check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise ManifestError("The base URL must be https://host[/path]: Outlook loads add-ins over HTTPS only.")
    return base_url.rstrip("/")


def outlook_xml(base_url: str, addin_id: str, client_id: str) -> str:
    base = check_base_url(base_url)
    return render_template(
        "manifest/outlook.xml",
        base=base,
        host=urlsplit(base).netloc,
        addin_id=addin_id,
        client_id=client_id,
        version=f"{VERSION}.0",
        mailbox_version=MAILBOX_VERSION,
        surfaces=SURFACES,
        send_handler=SEND_HANDLER,
    )


def outlook_json(base_url: str, addin_id: str, client_id: str) -> dict[str, Any]:
    base = check_base_url(base_url)
    host = urlsplit(base).netloc
    icons = [{"size": size, "url": f"{base}/static/icons/icon-{size}.png"} for size in (16, 32, 80)]
    mobile_icons = [
        {"size": size, "url": f"{base}/static/icons/icon-{size}.png", "scale": scale}
        for size in (25, 32, 48)
        for scale in (1, 2, 3)
    ]
    mailbox = {
        "scopes": ["mail"],
        "formFactors": ["desktop", "mobile"],
        "capabilities": [{"name": "Mailbox", "minVersion": MAILBOX_VERSION}],
    }
    sending = {"scopes": ["mail"], "capabilities": [{"name": "Mailbox", "minVersion": SEND_EVENT_VERSION}]}
    return {
        "$schema": f"https://developer.microsoft.com/json-schemas/teams/v{UNIFIED_MANIFEST_VERSION}/MicrosoftTeams.schema.json",
        "manifestVersion": UNIFIED_MANIFEST_VERSION,
        "version": VERSION,
        "id": addin_id,
        "developer": {
            "name": "Inbox CRM",
            "websiteUrl": f"{base}/preview",
            "privacyUrl": f"{base}/preview",
            "termsOfUseUrl": f"{base}/preview",
        },
        "name": {"short": "Inbox CRM", "full": "Inbox CRM: the CRM in your inbox"},
        "description": {
            "short": "Log emails, calls and meetings and move deals from Outlook.",
            "full": "Sales reps log emails, calls and meetings, move deals through stages and add notes and follow-ups "
            "without leaving Outlook; managers see their team's figures in the same pane.",
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#0F6CBD",
        "localizationInfo": {"defaultLanguageTag": "en-us"},
        "validDomains": [host],
        "webApplicationInfo": {"id": client_id, "resource": f"api://{host}/{client_id}"},
        "authorization": {
            "permissions": {"resourceSpecific": [{"name": "MailboxItem.ReadWrite.User", "type": "Delegated"}]}
        },
        "extensions": [
            {
                "requirements": mailbox,
                "runtimes": [
                    {
                        "requirements": mailbox,
                        "id": "TaskPaneRuntime",
                        "type": "general",
                        "code": {"page": f"{base}/pane"},
                        "lifetime": "short",
                        "actions": [{"id": "OpenTaskPane", "type": "openPage", "pinnable": True}],
                    },
                    {
                        # Where launch events run: a hidden page, or the script alone on classic Windows.
                        "requirements": sending,
                        "id": "LaunchEventRuntime",
                        "type": "general",
                        "code": {"page": f"{base}/launch-event", "script": f"{base}/static/js/launchevent.js"},
                        "lifetime": "short",
                        "actions": [{"id": SEND_HANDLER, "type": "executeFunction"}],
                    },
                ],
                # A marked message is logged as it is sent; soft block: the send never waits on us.
                "autoRunEvents": [
                    {
                        "requirements": sending,
                        "events": [
                            {"type": "messageSending", "actionId": SEND_HANDLER, "options": {"sendMode": "softBlock"}}
                        ],
                    }
                ],
                "ribbons": [
                    {
                        "requirements": {"formFactors": ["desktop"]},
                        "contexts": ["mailRead", "mailCompose", "meetingDetailsOrganizer", "meetingDetailsAttendee"],
                        "tabs": [
                            {
                                "builtInTabId": "TabDefault",
                                "groups": [
                                    {
                                        "id": "inboxCrmGroup",
                                        "label": "Inbox CRM",
                                        "icons": icons,
                                        "controls": [
                                            {
                                                "id": "openInboxCrm",
                                                "type": "button",
                                                "label": "Inbox CRM",
                                                "icons": icons,
                                                "supertip": {
                                                    "title": "Inbox CRM",
                                                    "description": "See who this is, what is open with them, and log it to the CRM.",
                                                },
                                                "actionId": "OpenTaskPane",
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                    {
                        # Outlook on iOS and Android: the same pane from a message (read mode only there).
                        "requirements": {"formFactors": ["mobile"]},
                        "contexts": ["mailRead"],
                        "tabs": [
                            {
                                "id": "inboxCrmMobileTab",
                                "label": "Inbox CRM",
                                "customMobileRibbonGroups": [
                                    {
                                        "id": "mobileMessageRead",
                                        "label": "Inbox CRM",
                                        "controls": [
                                            {
                                                "id": "openInboxCrmMobile",
                                                "type": "mobileButton",
                                                "label": "Inbox CRM",
                                                "icons": mobile_icons,
                                                "actionId": "OpenTaskPane",
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                ],
            }
        ],
    }


# Only the open message, never the mailbox, and no more than is used: the add-on runs
# (execute), reads the message the user has open (readonly), sees a draft's recipients in
# compose (metadata: Google's manifest reference says a compose trigger's ``draftAccess:
# METADATA`` requires this scope), and learns who the user is (userinfo.email, for the user ID
# token). No ``action.compose``: no card changes a draft.
GMAIL_SCOPES = [
    "https://www.googleapis.com/auth/gmail.addons.execute",
    "https://www.googleapis.com/auth/gmail.addons.current.message.readonly",
    "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
    "https://www.googleapis.com/auth/userinfo.email",
]


def gmail_deployment(base_url: str) -> dict[str, Any]:
    base = check_base_url(base_url)
    logo = f"{base}/static/icons/icon-128.png"
    return {
        "oauthScopes": GMAIL_SCOPES,
        "addOns": {
            "common": {
                "name": "Inbox CRM",
                "logoUrl": logo,
                "layoutProperties": {"primaryColor": "#0F6CBD"},
                "homepageTrigger": {"runFunction": f"{base}/gmail/homepage", "enabled": True},
                "openLinkUrlPrefixes": [f"{base}/"],
            },
            "gmail": {
                "contextualTriggers": [{"unconditional": {}, "onTriggerFunction": f"{base}/gmail/message"}],
                "composeTrigger": {
                    "actions": [{"runFunction": f"{base}/gmail/compose", "label": "Inbox CRM", "logoUrl": logo}],
                    "draftAccess": "METADATA",
                },
            },
            "httpOptions": {"authorizationHeader": "SYSTEM_ID_TOKEN"},
        },
    }


def write_manifests(base_url: str, out_dir: str, addin_id: str, client_id: str) -> list[str]:
    """Write ``outlook/manifest.xml`` and ``outlook/manifest.json`` (with its two icons), and
    ``gmail/deployment.json``."""
    check_base_url(base_url)
    outlook = os.path.join(out_dir, "outlook")
    os.makedirs(outlook, exist_ok=True)
    written = []
    path = os.path.join(outlook, "manifest.xml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(outlook_xml(base_url, addin_id, client_id))
    written.append(path)
    path = os.path.join(outlook, "manifest.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(outlook_json(base_url, addin_id, client_id), handle, indent=2)
        handle.write("\n")
    written.append(path)
    icons = os.path.join(current_app.static_folder or "", "icons")
    for source, target in (("icon-192.png", "color.png"), ("outline-32.png", "outline.png")):
        shutil.copyfile(os.path.join(icons, source), os.path.join(outlook, target))
        written.append(os.path.join(outlook, target))
    gmail = os.path.join(out_dir, "gmail")
    os.makedirs(gmail, exist_ok=True)
    path = os.path.join(gmail, "deployment.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(gmail_deployment(base_url), handle, indent=2)
        handle.write("\n")
    written.append(path)
    return written
