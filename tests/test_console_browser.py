"""The review console in a real browser (Debian's chromium driven by Playwright) against a real server, real
workers (transactions, documents, products), a real Redis and a real database: what an analyst, a rule author
and an approver, a document reviewer and a product editor do, that document text can never run as script, and
that roles and CSRF tokens are enforced.

Screenshots go to a temporary folder, or to docs/screenshots/ (for the README) with SLIMLINE_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from schemas import Kind
from tests.conftest import Deployment
from tests.support.services import REPO_ROOT
from workers.console.auth import hash_password
from workers.console.highlight import segments
from workers.db.engine import migrate
from workers.db.models import AuditEvent
from workers.db.models_console import AnalystLabel
from workers.runtime.redis_server import RedisServer, free_port
from workers.transactions.simulator import SimulationConfig, simulate

pytest.importorskip("playwright", reason="the browser tests need playwright (the test extra)")
pytest.importorskip("llama_cpp", reason="the products worker needs the generator's llama.cpp build")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Dialog, Page, expect  # noqa: E402

PASSWORD = "a long test password 1"
USERS = {
    "ana": ["analyst"],
    "rita": ["rule_author", "rule_approver"],  # an approver too: still cannot promote her own draft
    "abe": ["rule_approver", "admin"],
    "dora": ["document_reviewer"],
    "ed": ["product_editor"],
}
XSS_TEXT = ('<script>alert("xss")</script><img src=x onerror=alert(document.cookie)> Invoice 4471 from Acme Ltd: '
            'please pay EUR 1,245.80 to DE89370400440532013000 by 31 May 2024.')
DOCUMENTS = [
    {"id": "letter-1", "text": "Dear Sir, I am writing to complain about the delayed delivery of my order 88123. "
                               "The parcel arrived broken and nobody answered my emails. I expect a refund."},
    {"id": "xss-1", "text": XSS_TEXT},
]
PRODUCTS = [{"id": "mug-7", "name": "Stoneware Mug", "languages": ["en", "de"],
             "attributes": {"material": "stoneware", "capacity": "350 ml", "colour": "blue"}}]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's chromium (Playwright's own browser download cannot work here), headless; Playwright gives it an
    empty profile (--user-data-dir) of its own."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1360, "height": 900}}


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("SLIMLINE_UPDATE_SCREENSHOTS") == "1":
        return REPO_ROOT / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Redis, SQLite, three workers and the console's server, with users and processed work."""
    tmp_path = tmp_path_factory.mktemp("console")
    redis_server = RedisServer(tmp_path / "redis").start()
    url = f"sqlite:///{tmp_path / 'slimline.db'}"
    migrate(url)
    deployment = Deployment(redis_server, url, tmp_path, extra_env={
        "SLIMLINE_DOCUMENTS__REVIEW_SCORE": "1",  # every document waits for a person
        "SLIMLINE_TRANSACTIONS__RULES_REFRESH_SECONDS": "1",
        "SLIMLINE_GENERATOR__THREADS": "1",
        "SLIMLINE_WORKER_NICE": "0",  # on a shared machine a niced worker can take minutes to load its models
    })
    server = None
    try:
        with ThreadPoolExecutor(4) as pool:  # workers load their models while users are added
            starting = [pool.submit(deployment.start_worker, queues=queue) for queue in
                        ("transactions", "documents", "products")]
            [(first, roles), *others] = USERS.items()
            added = _slimline(deployment, "users", "add", first, *(f"--role={role}" for role in roles),
                              "--password-stdin", stdin=PASSWORD + "\n")
            assert added.returncode == 0, added.stderr
            for name, roles in others:  # as `slimline users add` does, without starting a process each
                deployment.store.add_user(name, hash_password(PASSWORD, 12), roles, actor="test")
            server = ConsoleServer(deployment).start()
            for future in starting:
                future.result()
        transactions = _transactions()
        deployment.enqueue(transactions, kind=Kind.transactions)
        deployment.enqueue(DOCUMENTS, kind=Kind.documents)
        deployment.enqueue(PRODUCTS, kind=Kind.products)
        _wait_for(lambda: len(deployment.store.current_results(Kind.transactions)) == len(transactions)
                  and len(deployment.store.current_results(Kind.documents)) == len(DOCUMENTS)
                  and len(deployment.store.current_results(Kind.products)) == len(PRODUCTS), 240, deployment)
        deployment.server = server  # type: ignore[attr-defined]
        yield deployment
    finally:
        if server is not None:
            server.stop()
        with ThreadPoolExecutor(4) as pool:  # warm shutdowns, all at once
            list(pool.map(lambda worker: worker.stop(), deployment.workers))
        deployment.close()
        redis_server.stop()


class ConsoleServer:
    """`slimline serve`: the gateway, which serves the console, in its own process."""

    def __init__(self, deployment: Deployment) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/console"
        self.log = deployment.tmp_path / "server.log"
        self.env = deployment.env()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> ConsoleServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, cwd=REPO_ROOT, stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/login", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the console did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _slimline(deployment: Deployment, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=deployment.env(), cwd=REPO_ROOT,
                          input=stdin, capture_output=True, text=True, timeout=120)


def _transactions() -> list[dict[str, Any]]:
    items = simulate(SimulationConfig(accounts=20, days=6, seed=11, fraud_episodes_per_account_day=0.15))
    return [{key: value for key, value in item.items() if key not in ("label", "scenario")} for item in items]


def _wait_for(condition: Any, timeout: float, deployment: Deployment) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(worker.log_tail() for worker in deployment.workers)
            raise AssertionError(f"timed out after {timeout}s\n{logs}")
        time.sleep(0.2)


def _log_in(page: Page, system: Deployment, username: str) -> None:
    page.goto(f"{system.server.url}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(username)


def _watch(page: Page) -> dict[str, list[str]]:
    """Dialogs (dismissed) and console errors of a page, from now on."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_dialog(dialog: Dialog) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    return seen


def _audit(system: Deployment, action: str, item_id: str) -> list[AuditEvent]:
    with system.store.sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
    return [row for row in rows if row.detail.get("item_id") == item_id]


def test_an_analyst_filters_takes_the_next_case_and_marks_it_fraud(page: Page, system: Deployment,
                                                                   screenshots: Path) -> None:
    assert len(system.store.flags(status="open")) >= 3
    watched = _watch(page)
    _log_in(page, system, "ana")
    page.goto(f"{system.server.url}/flags")  # type: ignore[attr-defined]
    open_flags = system.store.flags(status="open")
    expect(page.locator("#flag-table")).to_contain_text(f"{len(open_flags)} flag(s)")
    # Filter by outcome: htmx swaps the table in place and keeps the filters in the address.
    page.select_option("select[name=action]", "review")
    reviews = [row for row in open_flags if row["result"]["action"] == "review"]
    expect(page.locator("#flag-table")).to_contain_text(f"{len(reviews)} flag(s)")
    assert "action=review" in page.url
    scores = [float(cell) for cell in page.locator("#flag-table td.num:nth-child(2)").all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and len(scores) == min(len(reviews), 50)
    page.fill("input[name=view_name]", "reviews")  # a saved view: a link to these filters
    page.click("button:text('Save view')")
    expect(page.locator("nav.views a", has_text="reviews")).to_have_attribute("href", re.compile(r"action=review"))
    assert [view["filters"] for view in system.store.views("ana", "flags")] == [{"action": "review"}]
    page.screenshot(path=screenshots / "console-flags.png", full_page=True)

    page.click("#next-unassigned")
    expect(page.locator("h1")).to_contain_text("Transaction")
    taken = page.url.split("id=")[1]
    top = reviews[0]["item_id"]  # the highest score among the filtered open flags
    assert taken == top
    decision = system.store.current_results(Kind.transactions, item_ids=[taken])[0]["result"]
    for code in [rule["code"] for rule in decision["rules_fired"]] + [r["code"] for r in decision["model_reasons"]]:
        expect(page.locator("main")).to_contain_text(code)
    assert decision["rules_fired"] or decision["model_reasons"]
    expect(page.locator("main")).to_contain_text("Assigned to ana")
    page.screenshot(path=screenshots / "console-flag-case.png", full_page=True)

    page.check("input[name=decision][value=fraud]")
    page.fill("textarea[name=comment]", "Card used in two countries within minutes; customer confirmed theft.")
    page.click("#decide button[type=submit]")
    expect(page.locator(".notice")).to_contain_text(f"{taken}: fraud")

    with system.store.sessions() as session:
        [label] = session.scalars(select(AnalystLabel).where(AnalystLabel.transaction_id == taken)).all()
    assert (label.decision, label.label, label.analyst) == ("fraud", 1, "ana")
    assert "customer confirmed theft" in label.comment
    [row] = system.store.current_results(Kind.transactions, item_ids=[taken])
    assert row["review_status"] == "confirmed_fraud"
    [audited] = _audit(system, "flag.decide", taken)
    assert (audited.actor, audited.detail["label"], audited.detail["to"]) == ("ana", 1, "confirmed_fraud")
    assert _audit(system, "flag.lock", taken)
    exported = _slimline(system, "flags", "labels")
    assert exported.returncode == 0 and json.loads(exported.stdout.splitlines()[0])["transaction_id"] == taken
    assert watched == {"dialogs": [], "errors": []}


def test_a_rule_author_drafts_and_backtests_only_another_person_promotes(browser: Any, system: Deployment,
                                                                         screenshots: Path) -> None:
    author = browser.new_context(viewport={"width": 1360, "height": 900})
    page = author.new_page()
    _log_in(page, system, "rita")
    page.goto(f"{system.server.url}/rules")  # type: ignore[attr-defined]
    page.click("a[href$='code=LARGE_AMOUNT']")
    page.fill("textarea[name=when]", "amount >= 1000")
    page.fill("input[name=summary]", "review payments from 1,000")
    page.click("#draft-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("draft")
    version_url = page.url.split("?")[0]
    version_id = int(version_url.rsplit("/", 1)[1])
    page.click("#run-backtest")  # htmx: the backtest panel is replaced in place
    expect(page.locator("#changed-count")).to_be_visible()
    changed = int(page.locator("#changed-count").inner_text())
    decisions = system.store.transaction_decisions(10_000)
    newly = [row for row in decisions if row["result"]["features"]["amount"] >= 1000
             and row["result"]["action"] == "allow"]
    assert changed >= len(newly) > 0
    expect(page.locator("#backtest")).to_contain_text("precision")
    page.screenshot(path=screenshots / "console-rule-backtest.png", full_page=True)

    # The author is an approver too, and still cannot promote her own draft: the server refuses it.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"{version_url}/promote", form={"csrf_token": token}, max_redirects=0)
    assert refused.status == 403 and "another approver" in refused.text()
    assert system.store.rule_version(version_id)["status"] == "draft"
    author.close()

    approver = browser.new_context()
    page = approver.new_page()
    _log_in(page, system, "abe")
    page.goto(version_url)
    page.fill("input[name=note]", "backtest reviewed")
    page.click("#promote")
    expect(page.locator(".notice")).to_contain_text("is promoted")
    promoted = system.store.rule_version(version_id)
    assert (promoted["status"], promoted["decided_by"]) == ("promoted", "abe")
    assert _audit_rows(system, "rules.promote")[-1].detail["version"] == version_id
    approver.close()

    time.sleep(1.5)  # workers look for a newer version every second here
    payment = {**_transactions()[0], "id": "after-promotion", "amount": "1500.00", "channel": "card_present",
               "timestamp": "2024-03-07T12:00:00Z", "metadata": {}}
    system.enqueue([payment], kind=Kind.transactions)
    _wait_for(lambda: system.store.current_results(Kind.transactions, item_ids=["after-promotion"]), 60, system)
    [decided] = system.store.current_results(Kind.transactions, item_ids=["after-promotion"])
    assert decided["result"]["rule_set_version"] == f"v{version_id}:sha256:{promoted['sha256'][:16]}"
    assert "LARGE_AMOUNT" in [rule["code"] for rule in decided["result"]["rules_fired"]]


def _audit_rows(system: Deployment, action: str) -> list[AuditEvent]:
    with system.store.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_a_reviewer_corrects_a_documents_class_and_results_history_shows_the_human_version(
        page: Page, system: Deployment, screenshots: Path) -> None:
    _log_in(page, system, "dora")
    page.goto(f"{system.server.url}/documents")  # type: ignore[attr-defined]
    page.click("a:text('letter-1')")
    before = system.store.current_results(Kind.documents, item_ids=["letter-1"])[0]["result"]["classification"]
    options = page.locator("#class-label option").all_inner_texts()
    new_label = next(label for label in options if label != before["label"])
    page.select_option("#class-label", new_label)
    page.fill("textarea[name=note]", "a customer's complaint, not an enquiry")
    page.click("#correct button[type=submit]")
    expect(page.locator(".notice")).to_contain_text(f"class {before['label']} → {new_label}")
    history = _slimline(system, "results", "documents", "--history", "--id", "letter-1", "--format", "jsonl")
    assert history.returncode == 0, history.stderr
    versions = [json.loads(line) for line in history.stdout.splitlines() if line.strip()]
    assert [version["tier"] for version in versions] == ["compact", "human"]
    assert versions[-1]["is_current"] and versions[-1]["producer"] == "dora"
    assert versions[-1]["result"]["classification"]["label"] == new_label
    assert versions[0]["result"]["classification"]["label"] == before["label"]  # kept, not overwritten
    assert _audit(system, "review", "letter-1")[-1].actor == "dora"


def test_an_editor_approves_a_product_draft(page: Page, system: Deployment, screenshots: Path) -> None:
    _log_in(page, system, "ed")
    page.goto(f"{system.server.url}/products")  # type: ignore[attr-defined]
    page.click("a:text('mug-7')")
    expect(page.locator("main")).to_contain_text("350 ml")  # the facts beside the drafts
    draft = system.store.current_results(Kind.products, item_ids=["mug-7"])[0]["result"]
    for language, description in draft["descriptions"].items():
        expect(page.locator(f"#lang-{language}")).to_contain_text(description["text"][:40])
        for reason in description["reasons"]:  # why a language fell back to its template
            expect(page.locator(f"#lang-{language}")).to_contain_text(reason["code"])
    assert any(description["reasons"] for description in draft["descriptions"].values())
    page.screenshot(path=screenshots / "console-product.png", full_page=True)
    page.click("#approve button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("mug-7: approved")
    [row] = system.store.current_results(Kind.products, item_ids=["mug-7"])
    assert row["review_status"] == "approved"
    assert _audit(system, "review", "mug-7")[-1].actor == "ed"


def test_document_text_with_markup_shows_as_text_and_runs_no_script(page: Page, system: Deployment,
                                                                    screenshots: Path) -> None:
    watched = _watch(page)
    _log_in(page, system, "dora")
    page.goto(f"{system.server.url}/documents/doc?id=xss-1")  # type: ignore[attr-defined]
    text = page.locator("#doc-text")
    expect(text).to_contain_text('<script>alert("xss")</script><img src=x onerror=alert(document.cookie)>')
    assert text.locator("script, img").count() == 0
    assert page.locator("main img, main script").count() == 0
    stored = system.store.current_results(Kind.documents, item_ids=["xss-1"])[0]["result"]
    marked = [piece["entity"] for piece in segments(XSS_TEXT, stored["entities"]) if piece["entity"]]
    assert marked, "the worker found entities in the document"
    assert text.locator("mark.ent").count() == len(marked)
    for entity in marked[:3]:
        expect(text.locator("mark.ent", has_text=entity["text"]).first).to_have_attribute("data-label", entity["label"])
    page.screenshot(path=screenshots / "console-document.png", full_page=True)
    page.goto(f"{system.server.url}/")  # type: ignore[attr-defined]
    expect(page.locator("main")).to_contain_text("documents.escalate")  # the queues, as `slimline status` reads them
    page.screenshot(path=screenshots / "console-overview.png", full_page=True)
    response = page.goto(f"{system.server.url}/report")  # type: ignore[attr-defined]
    assert response is not None and response.status == 200  # the report, or why it is not here
    page.wait_for_timeout(300)
    assert watched == {"dialogs": [], "errors": []}


def test_pages_outside_your_role_and_forms_without_their_token_are_refused(page: Page, system: Deployment) -> None:
    _log_in(page, system, "ed")  # a product editor
    for path in ("/flags", "/rules", "/documents", "/admin/users"):
        response = page.goto(f"{system.server.url}{path}")  # type: ignore[attr-defined]
        assert response is not None and response.status == 403, path
        expect(page.locator(".error")).to_contain_text("needs the role")
    denied = [row for row in _audit_rows(system, "console.denied") if row.actor == "ed"]
    assert {row.detail["path"] for row in denied} >= {"/console/flags", "/console/rules"}

    page.context.clear_cookies()
    _log_in(page, system, "ana")
    [flag] = system.store.flags(status="open")[:1]
    labels_before = len(system.store.analyst_labels(newest_only=False))
    form = {"id": flag["item_id"], "decision": "legitimate", "comment": "looks fine", "version": str(flag["version"])}
    without = page.request.post(f"{system.server.url}/flags/decide", form=form, max_redirects=0)  # type: ignore[attr-defined]
    wrong = page.request.post(f"{system.server.url}/flags/decide", form={**form, "csrf_token": "x" * 43},  # type: ignore[attr-defined]
                              max_redirects=0)
    assert (without.status, wrong.status) == (403, 403)
    assert "security token" in without.text()
    assert len(system.store.analyst_labels(newest_only=False)) == labels_before
    assert system.store.current_results(Kind.transactions, item_ids=[flag["item_id"]])[0]["review_status"] == "open"
    assert [row.actor for row in _audit_rows(system, "console.csrf_refused")] == ["ana", "ana"]


def test_an_admin_adds_a_user_on_the_admin_page(page: Page, system: Deployment) -> None:
    _log_in(page, system, "abe")
    page.goto(f"{system.server.url}/admin/users")  # type: ignore[attr-defined]
    page.fill("form[action$='/admin/users'] input[name=username]", "zoe")
    page.fill("form[action$='/admin/users'] input[name=password]", "zoe's long password")
    page.check("form[action$='/admin/users'] input[value=analyst]")
    page.click("form[action$='/admin/users'] button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Added zoe (analyst)")
    assert system.store.user("zoe")["roles"] == ["analyst"]
    assert [row.detail["user"] for row in _audit_rows(system, "user.add") if row.actor == "abe"] == ["zoe"]
    page.context.clear_cookies()
    page.goto(f"{system.server.url}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", "zoe")
    page.fill("input[name=password]", "zoe's long password")
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text("zoe (analyst)")
