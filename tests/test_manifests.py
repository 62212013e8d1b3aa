"""The Outlook manifests: valid against Microsoft's published schema, every URL on the
backend over HTTPS, every surface opening a pinnable task pane."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / ".cache" / "app-manifest" / "package" / "build" / "json-schemas" / "teams"
BASE = "https://crm.example.test/inbox"
STATIC = ROOT / "addin" / "static" / "icons"
NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
    "v10": "http://schemas.microsoft.com/office/mailappversionoverrides",
    "v11": "http://schemas.microsoft.com/office/mailappversionoverrides/1.1",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"


@pytest.fixture
def generated(app, tmp_path) -> Path:
    result = app.test_cli_runner().invoke(args=["manifest", "--base-url", BASE + "/", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    return tmp_path / "outlook"


def test_unified_manifest_is_valid_against_microsofts_schema(generated):
    manifest = json.loads((generated / "manifest.json").read_text())
    schema_file = SCHEMAS / f"v{manifest['manifestVersion']}" / "MicrosoftTeams.schema.json"
    assert schema_file.exists(), f"{schema_file} is missing: `make test` fetches @microsoft/app-manifest with npm"
    validator = Draft4Validator(json.loads(schema_file.read_text()))
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]
    assert (generated / manifest["icons"]["color"]).read_bytes().startswith(b"\x89PNG")
    assert (generated / manifest["icons"]["outline"]).read_bytes().startswith(b"\x89PNG")


def test_the_schema_check_catches_a_broken_manifest(generated):
    manifest = json.loads((generated / "manifest.json").read_text())
    del manifest["developer"]
    manifest["extensions"][0]["ribbons"][0]["contexts"] = ["nowhere"]
    schema = json.loads((SCHEMAS / f"v{manifest['manifestVersion']}" / "MicrosoftTeams.schema.json").read_text())
    assert len(list(Draft4Validator(schema).iter_errors(manifest))) >= 2


def test_both_manifests_open_the_pane_on_phones(generated):
    """Outlook on iOS and Android: the XML manifest's MobileFormFactor (a MobileButton on the
    message read surface, its icons at 25, 32 and 48 px at scales 1 to 3), and the unified
    manifest's mobile ribbon, both opening the same pane."""
    root = ET.parse(generated / "manifest.xml").getroot()
    overrides = root.find("v10:VersionOverrides/v11:VersionOverrides", NS)
    mobile = overrides.find("v11:Hosts/v11:Host/v11:MobileFormFactor", NS)
    point = mobile.find("v11:ExtensionPoint", NS)
    assert point.get(XSI_TYPE) == "MobileMessageReadCommandSurface"
    control = point.find("v11:Group/v11:Control", NS)
    assert control.get(XSI_TYPE) == "MobileButton"
    assert control.find("v11:Icon", NS).get(XSI_TYPE) == "bt:MobileIconList"
    images = control.findall("v11:Icon/bt:Image", NS)
    assert sorted((int(i.get("size")), int(i.get("scale"))) for i in images) == [
        (s, k) for s in (25, 32, 48) for k in (1, 2, 3)
    ]
    for image in images:
        url = overrides.find(f"v11:Resources/bt:Images/bt:Image[@id='{image.get('resid')}']", NS).get("DefaultValue")
        assert url.endswith(f"icon-{image.get('size')}.png") and (STATIC / f"icon-{image.get('size')}.png").exists()
    resid = control.find("v11:Action/v11:SourceLocation", NS).get("resid")
    assert overrides.find(f"v11:Resources/bt:Urls/bt:Url[@id='{resid}']", NS).get("DefaultValue") == f"{BASE}/pane"

    extension = json.loads((generated / "manifest.json").read_text())["extensions"][0]
    [phone] = [r for r in extension["ribbons"] if r.get("requirements", {}).get("formFactors") == ["mobile"]]
    button = phone["tabs"][0]["customMobileRibbonGroups"][0]["controls"][0]
    assert (
        phone["contexts"] == ["mailRead"] and button["type"] == "mobileButton" and button["actionId"] == "OpenTaskPane"
    )
    assert len(button["icons"]) == 9
    assert "mobile" in extension["requirements"]["formFactors"]


def test_unified_manifest_opens_a_pinnable_pane_on_every_surface(generated):
    manifest = json.loads((generated / "manifest.json").read_text())
    extension = manifest["extensions"][0]
    assert extension["ribbons"][0]["contexts"] == [
        "mailRead",
        "mailCompose",
        "meetingDetailsOrganizer",
        "meetingDetailsAttendee",
    ]
    action = extension["runtimes"][0]["actions"][0]
    assert action == {"id": "OpenTaskPane", "type": "openPage", "pinnable": True}
    assert extension["runtimes"][0]["code"]["page"] == f"{BASE}/pane"
    assert manifest["authorization"]["permissions"]["resourceSpecific"][0]["name"] == "MailboxItem.ReadWrite.User"


def _urls(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _urls(item)
    elif isinstance(value, str) and "://" in value:
        # The schema's own address and the SSO application ID URI (api://host/id) are not
        # pages Outlook loads.
        if not value.startswith(("https://developer.microsoft.com/json-schemas", "api://")):
            yield value


def test_every_url_points_at_the_backend_over_https(generated):
    urls = list(_urls(json.loads((generated / "manifest.json").read_text())))
    root = ET.parse(generated / "manifest.xml").getroot()
    urls += [v for e in root.iter() for k, v in e.attrib.items() if k == "DefaultValue" and "://" in v]
    urls += [e.text for e in root.iter(f"{{{NS['o']}}}AppDomain")]
    assert len(urls) > 10
    assert all(u.startswith(BASE + "/") or u == BASE for u in urls), urls


def test_xml_manifest_structure(generated):
    root = ET.parse(generated / "manifest.xml").getroot()
    assert root.tag == f"{{{NS['o']}}}OfficeApp" and root.get(XSI_TYPE) == "MailApp"
    assert root.find("o:Permissions", NS).text == "ReadWriteItem"
    assert root.find("o:Hosts/o:Host", NS).get("Name") == "Mailbox"
    overrides = root.find("v10:VersionOverrides/v11:VersionOverrides", NS)
    assert overrides.get(XSI_TYPE) == "VersionOverridesV1_1"
    assert overrides.find("v11:Requirements/bt:Sets", NS).get("DefaultMinVersion") == "1.5"
    points = [
        p
        for p in overrides.findall("v11:Hosts/v11:Host/v11:DesktopFormFactor/v11:ExtensionPoint", NS)
        if p.get(XSI_TYPE) != "LaunchEvent"
    ]
    assert [p.get(XSI_TYPE) for p in points] == [
        "MessageReadCommandSurface",
        "MessageComposeCommandSurface",
        "AppointmentOrganizerCommandSurface",
        "AppointmentAttendeeCommandSurface",
    ]
    for point in points:
        action = point.find(".//v11:Action", NS)
        assert action.get(XSI_TYPE) == "ShowTaskpane"
        assert action.find("v11:SupportsPinning", NS).text == "true"
        resid = action.find("v11:SourceLocation", NS).get("resid")
        assert overrides.find(f"v11:Resources/bt:Urls/bt:Url[@id='{resid}']", NS).get("DefaultValue") == f"{BASE}/pane"
        for image in point.iter(f"{{{NS['bt']}}}Image"):
            assert overrides.find(f"v11:Resources/bt:Images/bt:Image[@id='{image.get('resid')}']", NS) is not None
    sso = overrides.find("v11:WebApplicationInfo", NS)
    # Microsoft's application ID URI form: api://<host>/<client id>, no path.
    assert sso.find("v11:Resource", NS).text == f"api://crm.example.test/{sso.find('v11:Id', NS).text}"
    # WebApplicationInfo comes last in VersionOverrides, as the schema's sequence requires.
    assert list(overrides)[-1] is sso


@pytest.mark.parametrize("base", ["http://crm.example.test", "crm.example.test", "https://", "https://x.test/?a=1"])
def test_manifest_refuses_a_base_url_that_is_not_https(app, tmp_path, base):
    result = app.test_cli_runner().invoke(args=["manifest", "--base-url", base, "--out", str(tmp_path)])
    assert result.exit_code != 0 and "HTTPS" in result.output
    assert not (tmp_path / "outlook").exists()


def test_checked_in_example_is_what_the_command_makes(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["manifest", "--base-url", "https://crm.example.com", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0
    for name in ("manifest.xml", "manifest.json"):
        assert (tmp_path / "outlook" / name).read_text() == (ROOT / "manifest" / "outlook" / name).read_text(), name


def test_a_marked_message_is_logged_as_it_is_sent(generated):
    """OnMessageSend (Mailbox 1.12) in both manifests, soft-blocking, handled by the function
    static/js/launchevent.js associates, in a runtime that is our hidden page or, on classic
    Windows, that script; the pane's own surfaces keep asking Mailbox 1.5 only."""
    handler = "onMessageSendHandler"
    assert f'Office.actions.associate("{handler}"' in (ROOT / "addin" / "static" / "js" / "launchevent.js").read_text()

    root = ET.parse(generated / "manifest.xml").getroot()
    overrides = root.find("v10:VersionOverrides/v11:VersionOverrides", NS)
    host = overrides.find("v11:Hosts/v11:Host", NS)
    launch = next(
        p for p in host.findall("v11:DesktopFormFactor/v11:ExtensionPoint", NS) if p.get(XSI_TYPE) == "LaunchEvent"
    )
    event = launch.find("v11:LaunchEvents/v11:LaunchEvent", NS)
    assert (event.get("Type"), event.get("FunctionName"), event.get("SendMode")) == (
        "OnMessageSend",
        handler,
        "SoftBlock",
    )
    runtime = host.find("v11:Runtimes/v11:Runtime", NS)
    assert runtime.get("resid") == launch.find("v11:SourceLocation", NS).get("resid")
    urls = {url.get("id"): url.get("DefaultValue") for url in overrides.findall("v11:Resources/bt:Urls/bt:Url", NS)}
    assert urls[runtime.get("resid")] == f"{BASE}/launch-event"
    assert urls[runtime.find("v11:Override", NS).get("resid")] == f"{BASE}/static/js/launchevent.js"
    assert runtime.find("v11:Override", NS).get("type") == "javascript"

    manifest = json.loads((generated / "manifest.json").read_text())
    extension = manifest["extensions"][0]
    assert extension["requirements"]["capabilities"] == [{"name": "Mailbox", "minVersion": "1.5"}]
    runtime = next(r for r in extension["runtimes"] if any(a["id"] == handler for a in r["actions"]))
    assert runtime["requirements"]["capabilities"] == [{"name": "Mailbox", "minVersion": "1.12"}]
    assert runtime["code"] == {"page": f"{BASE}/launch-event", "script": f"{BASE}/static/js/launchevent.js"}
    [events] = extension["autoRunEvents"]
    assert events["requirements"]["capabilities"] == [{"name": "Mailbox", "minVersion": "1.12"}]
    assert events["events"] == [{"type": "messageSending", "actionId": handler, "options": {"sendMode": "softBlock"}}]
