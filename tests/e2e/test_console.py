"""The operator console (`/ui`) in headless Chromium (Debian's `chromium`, driven by Playwright
from PyPI; no browser is downloaded), against the real `meshos serve --healer`.

An operator signs in and sees the fleet; a PII-leak burst makes the healer open an incident
whose quarantine waits for approval; a forged write without the CSRF token is refused; the
operator approves the plan whose digest the page shows and watches the incident resolve on the
page (server-sent events, no reload); a ledger record's proof is verified by the page's own
script, and a tampered one is not; an auditor sees no buttons; another tenant sees nothing.
Every page is photographed into $MESHOS_SCREENSHOTS (default: the test's temporary folder).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from meshos_e2e import bearer, http_request, leaky_fleet_second, wait_for

TENANT = "console"
CHROMIUM = os.environ.get("MESHOS_CHROMIUM", "/usr/bin/chromium")
# What the probe of this machine kind found Chromium needs as root on a closed network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/setup-test-deps.sh (Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="run scripts/setup-test-deps.sh")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    d = Path(os.environ.get("MESHOS_SCREENSHOTS", tmp_path / "screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def cli_json(meshos, *args):
    proc = meshos.run(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def reloaded(page):
    page.reload()
    return page


def sign_in(browser, server, token, viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server.base_url}/ui/fleet")
    assert "/ui/login" in page.url, page.url
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/fleet$"))
    return context, page


class Traffic:
    """Keeps a second of traffic a tick going in the background, leak share adjustable."""

    def __init__(self, server, token):
        self.server, self.token = server, token
        self.leak = 0.0
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 1000
        while not self.stop.is_set():
            try:
                leaky_fleet_second(self.server, self.token, self.leak, i)
            except AssertionError as e:  # noqa: PERF203 - reported after the test
                self.errors.append(str(e))
            i += 1
            time.sleep(0.3)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


def test_operator_approves_a_heal_plan_and_audits_the_evidence(meshos, make_server, browser, shots):
    server = make_server("--healer", "--sla-threshold", "5")
    operator = meshos.token(TENANT, "operator")
    auditor = meshos.token(TENANT, "auditor")
    agent_token = meshos.token(TENANT, "agent", agent="agent-3")
    other = meshos.token("elsewhere", "operator")
    for i in range(5):
        leaky_fleet_second(server, operator, 0.0, i)
        time.sleep(0.2)
    # A payment waits for an operator: a pending policy approval.
    status, _, raw = http_request(
        "POST", f"{server.base_url}/v1/policy/check",
        json.dumps({"agent_id": "agent-7", "action": "payments.transfer"}),
        {**bearer(operator), "Content-Type": "application/json"},
    )
    assert status == 200 and json.loads(raw)["decision"] == "require_approval", raw

    # An agent token cannot sign in.
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{server.base_url}/ui/login")
    page.fill("#token", agent_token)
    page.click("button[type=submit]")
    assert "cannot sign in" in page.inner_text("main")
    ctx.close()

    context, page = sign_in(browser, server, operator)
    assert page.inner_text("[data-testid=who]") == f"{TENANT} · operator"
    wait_for(lambda: reloaded(page).inner_text("[data-testid=agent-count]") == "10",
             "ten agents on the fleet page", timeout=20)
    assert page.locator("table[data-testid=fleet] tbody tr").count() == 10
    page.screenshot(path=str(shots / "fleet.png"), full_page=True)
    # No token in the URL or in storage; the session cookie is HttpOnly and strict.
    assert operator not in page.url
    assert page.evaluate("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)") == "{}{}"
    cookie = [c for c in context.cookies() if c["name"] == "meshos_session"][0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "meshos_session" not in page.evaluate("() => document.cookie")

    mobile, phone = sign_in(browser, server, operator, viewport={"width": 390, "height": 844})
    phone.screenshot(path=str(shots / "fleet-phone.png"), full_page=True)
    mobile.close()

    # The leak: the healer opens an incident, the redaction overlay fails, the quarantine waits.
    def leak(i):
        leaky_fleet_second(server, operator, 0.7, 100 + i)

    def awaiting():
        listed = cli_json(meshos, "incidents", "list", "--tenant", TENANT)
        for inc in listed:
            view = cli_json(meshos, "incidents", "show", "--tenant", TENANT, inc["id"])
            if view["state"] == "awaiting_approval":
                return view
        return None

    view = wait_for(awaiting, "a plan awaiting approval", timeout=150, step=leak)
    incident_id, digest = view["id"], view["data"]["approval"]["digest"]

    page.goto(f"{server.base_url}/ui/agents/agent-3")
    assert page.locator("svg.chart").count() == 1
    page.screenshot(path=str(shots / "agent.png"), full_page=True)

    page.goto(f"{server.base_url}/ui/incidents")
    page.click(f"a[href='/ui/incidents/{incident_id}']")
    page.wait_for_url(re.compile(f".*/ui/incidents/{incident_id}$"))
    assert page.inner_text("[data-testid=incident-state]") == "awaiting_approval"
    assert page.inner_text("[data-testid=plan-digest]") == digest
    assert page.locator("[data-testid=timeline] li").count() >= 4
    page.screenshot(path=str(shots / "incident-awaiting.png"), full_page=True)

    # A write without the CSRF token (as a forged form would send) is refused and changes nothing.
    refused = page.evaluate(
        """async ([url, digest]) => {
            const r = await fetch(url, {method: 'POST', body: new URLSearchParams({digest})});
            return [r.status, await r.text()];
        }""",
        [f"/ui/incidents/{incident_id}/approve", digest],
    )
    assert refused[0] == 403 and "CSRF" in refused[1], refused
    assert cli_json(meshos, "incidents", "show", "--tenant", TENANT, incident_id)["state"] == "awaiting_approval"

    # The auditor reads the same incident with no buttons.
    audit_ctx, audit_page = sign_in(browser, server, auditor)
    audit_page.goto(f"{server.base_url}/ui/incidents/{incident_id}")
    assert audit_page.inner_text("[data-testid=plan-digest]") == digest
    assert audit_page.locator("[data-testid=approve]").count() == 0
    assert audit_page.locator("button[data-testid=deny]").count() == 0
    assert "can only read" in audit_page.inner_text("#incident")
    audit_page.screenshot(path=str(shots / "incident-auditor.png"), full_page=True)
    audit_page.goto(f"{server.base_url}/ui/approvals")
    assert audit_page.locator("[data-testid=approvals] .card").count() == 1
    assert audit_page.locator("button[value=approve]").count() == 0
    audit_ctx.close()

    # Approve from the page, keep clean traffic flowing, and watch the page follow the incident
    # to `resolved` without reloading it.
    with Traffic(server, operator) as traffic:
        page.fill("#note-a", "leak confirmed from the console")
        page.click("[data-testid=approve]")
        page.wait_for_url(re.compile(f".*/ui/incidents/{incident_id}$"))
        assert page.inner_text("[data-testid=incident-state]") != "awaiting_approval"
        page.evaluate("() => { window.__sameDocument = true; }")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=incident-state]').textContent === 'resolved'",
            timeout=180_000,
        )
        assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
        assert not traffic.errors, traffic.errors
    page.screenshot(path=str(shots / "incident-resolved.png"), full_page=True)
    shown = cli_json(meshos, "incidents", "show", "--tenant", TENANT, incident_id)
    assert shown["state"] == "resolved"
    approvals = [t for t in shown["timeline"] if t["reason"] and "approved" in t["reason"]]
    assert approvals, shown["timeline"]

    # Every transition links its ledger record; the page verifies the proof itself.
    link = page.locator("[data-testid=ledger-link]").last
    link.click()
    page.wait_for_selector("[data-testid=verdict][data-state]")
    assert page.get_attribute("[data-testid=verdict]", "data-state") == "verified", page.inner_text(".verify")
    assert page.locator("#checks li.passed").count() == 4
    page.screenshot(path=str(shots / "record-verified.png"), full_page=True)
    with page.expect_download() as download:
        page.click("[data-testid=export]")
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["leaf_hash"] and exported["checkpoint"].startswith("meshos.local/ledger/")
    record_url = page.url

    # The same page with one byte of the record changed in transit: not verified.
    def tamper(route):
        body = route.fetch().text()
        body = body.replace('\\"tenant\\":\\"console\\"', '\\"tenant\\":\\"consolf\\"', 1)
        route.fulfill(body=body, headers={"content-type": "text/html; charset=utf-8"})

    page.route(record_url, tamper)
    page.goto(record_url)
    page.wait_for_selector("[data-testid=verdict][data-state]")
    assert page.get_attribute("[data-testid=verdict]", "data-state") == "failed"
    assert "NOT verified" in page.inner_text("[data-testid=verdict]")
    page.screenshot(path=str(shots / "record-tampered.png"), full_page=True)
    page.unroute(record_url)

    page.goto(f"{server.base_url}/ui/evidence")
    assert page.locator("table[data-testid=ledger] tbody tr").count() >= 10
    page.screenshot(path=str(shots / "evidence.png"), full_page=True)

    # The pending payment approval, answered in place.
    page.goto(f"{server.base_url}/ui/approvals")
    assert page.locator("[data-testid=approvals] .card").count() == 1
    page.screenshot(path=str(shots / "approvals.png"), full_page=True)
    page.click("button[value=approve]")
    page.wait_for_url(re.compile(r".*/ui/approvals$"))
    assert page.locator("[data-testid=approvals] .card").count() == 0

    page.goto(f"{server.base_url}/ui/policy?verdict=require_approval")
    assert "payments-need-approval" in page.inner_text("table[data-testid=decisions]")
    # The lint of the bundle in force runs in the background (cvc5) and shows when done.
    wait_for(lambda: "running" not in reloaded(page).inner_text("[data-testid=lint]"),
             "the policy lint", timeout=120, interval=2)
    assert re.match(r"0 errors, 0 warnings over \d+ policies", page.inner_text("[data-testid=lint]"))
    page.screenshot(path=str(shots / "policy.png"), full_page=True)

    page.goto(f"{server.base_url}/ui/incidents?state=all")
    page.screenshot(path=str(shots / "incidents.png"), full_page=True)

    # Another tenant's operator finds none of this tenant's agents, incidents or records.
    other_ctx, other_page = sign_in(browser, server, other)
    assert other_page.inner_text("[data-testid=agent-count]") == "0"
    assert "agent-3" not in other_page.content()
    resp = other_page.goto(f"{server.base_url}/ui/incidents/{incident_id}")
    assert resp.status == 404
    resp = other_page.goto(f"{server.base_url}/ui/agents/agent-3")
    assert resp.status == 404
    other_page.goto(f"{server.base_url}/ui/evidence")
    assert "agent-3" not in other_page.content()
    other_ctx.close()

    # Signing out ends the session.
    page.click("header button.link")
    page.wait_for_url(re.compile(r".*/ui/login$"))
    page.goto(f"{server.base_url}/ui/fleet")
    assert "/ui/login" in page.url
    context.close()


def test_pages_allow_no_inline_script(make_server, meshos, browser):
    server = make_server()
    token = meshos.token(TENANT, "operator")
    status, headers, _ = http_request("GET", f"{server.base_url}/ui/login")
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
    context, page = sign_in(browser, server, token)
    # An injected inline script does not run under the page's policy.
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.appendChild(s); }""")
    assert page.evaluate("() => window.__ran === true") is False
    context.close()


def signed_bundle(canonical: str, *, plus_in_key: bool):
    """A one-record ledger proof bundle as the record page embeds it, signed here with a key
    of our own (whose verifier key has a "+" in its base64 when asked), in the C2SP note format."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    name = "meshos-ledger"
    while True:
        key = Ed25519PrivateKey.generate()
        raw = b"\x01" + key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        b64 = base64.b64encode(raw).decode()
        if ("+" in b64) == plus_in_key:
            break
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    leaf = hashlib.sha256(b"\x00" + canonical.encode()).digest()
    text = f"meshos.local/ledger/test\n1\n{base64.b64encode(leaf).decode()}\n"
    sig = base64.b64encode(key_id + key.sign(text.encode())).decode()
    return {
        "ledger_index": 0, "tree_size": 1, "audit_path": [], "canonical": canonical,
        "leaf_hash": leaf.hex(), "checkpoint": f"{text}\n\u2014 {name} {sig}\n",
        "verifier_key": f"{name}+{key_id.hex()}+{b64}",
    }


def test_the_page_script_checks_proofs_and_signatures_itself(make_server, meshos, browser):
    """The record page's verifier on bundles signed here: keys with and without "+" in their
    base64 verify; a changed record, root or signature does not."""
    server = make_server()
    token = meshos.token(TENANT, "operator")
    http_request("POST", f"{server.base_url}/v1/events",
                 json.dumps({"events": [{"agent_id": "a", "kind": "llm_call", "outcome": "ok"}]}),
                 {**bearer(token), "Content-Type": "application/json"})
    context, page = sign_in(browser, server, token)
    page.goto(f"{server.base_url}/ui/evidence/0")
    page.wait_for_selector("[data-testid=verdict][data-state]")
    check = """async (data) => {
        try { await window.meshosVerify.verify(data, () => {}); return "ok"; }
        catch (e) { return e.message; } }"""
    canonical = 'meshos.ledger.v1\n{"type":"event","id":"evt_1"}'
    for plus in (True, False):
        bundle = signed_bundle(canonical, plus_in_key=plus)
        assert page.evaluate(check, bundle) == "ok", plus
    bundle = signed_bundle(canonical, plus_in_key=True)
    changed = {**bundle, "canonical": canonical.replace("evt_1", "evt_2")}
    assert "do not hash to the leaf" in page.evaluate(check, changed)
    lines = bundle["checkpoint"].split("\n")
    forged_sig = lines[-2][:-6] + ("AAAAA=" if not lines[-2].endswith("AAAAA=") else "BBBBB=")
    forged = {**bundle, "checkpoint": "\n".join(lines[:-2] + [forged_sig, ""])}
    assert "signature does not verify" in page.evaluate(check, forged)
    other_key = signed_bundle(canonical, plus_in_key=False)["verifier_key"]
    assert "no signature by" in page.evaluate(check, {**bundle, "verifier_key": other_key})
    context.close()
