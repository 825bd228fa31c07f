"""The audit chain: an edited, inserted or deleted row (the newest included) is detected; rows read
back from a real SQLite table (naive datetimes) verify; the key never leaves the process."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, create_engine, insert, select

from workers.security.audit_chain import (AuditKeyError, ChainHead, chain, load_audit_key, read_head, row_hmac,
                                          update_head, verify_chain)

KEY = b"audit-key-" + b"k" * 32
START = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)


def audit_rows(count: int = 6) -> list[dict]:
    actions = ["enqueue", "auth_rejection", "review", "dlq_replay", "model_load", "erasure"]
    rows = [{"id": n + 1, "at": START + timedelta(seconds=n), "actor": "erp" if n % 2 else "slimline",
             "action": actions[n % len(actions)], "kind": "documents",
             "detail": {"accepted": n, "rejected": 0, "model": "en_core_web_sm", "sha256": "ab" * 32}}
            for n in range(count)]
    for row, mac in zip(rows, chain(rows, KEY)):
        row["hmac"] = mac
    return rows


def head_of(rows: list[dict]) -> ChainHead:
    return ChainHead(len(rows), rows[-1]["hmac"])


def test_an_intact_chain_verifies() -> None:
    rows = audit_rows()
    report = verify_chain(rows, KEY, head_of(rows))
    assert report.ok and report.rows_checked == 6


@pytest.mark.parametrize("field, value", [("actor", "someone-else"), ("detail", {"accepted": 999}),
                                          ("at", START - timedelta(days=1)), ("kind", None)])
def test_an_edited_row_is_detected(field: str, value: object) -> None:
    rows = audit_rows()
    head = head_of(rows)
    rows[2][field] = value
    report = verify_chain(rows, KEY, head)
    assert report.problems == ["row id 3: edited, or a row before it was deleted (its HMAC does not follow from "
                               "the previous row)"]


def test_an_edit_with_a_recomputed_hmac_needs_the_key() -> None:
    rows = audit_rows()
    rows[2]["actor"] = "someone-else"
    rows[2]["hmac"] = row_hmac(b"guessed-" + b"g" * 32, rows[1]["hmac"], rows[2])
    assert "row id 3" in verify_chain(rows, KEY, head_of(rows)).problems[0]


def test_an_inserted_row_is_detected() -> None:
    rows = audit_rows()
    head = head_of(rows)
    forged = dict(rows[2], id=99, actor="intruder", hmac="0" * 64)
    rows.insert(3, forged)
    report = verify_chain(rows, KEY, head)
    assert report.problems[0] == "row id 99: inserted (the chain skips it)"
    assert any("the head file says row 6" in problem for problem in report.problems)


def test_a_deleted_row_is_detected() -> None:
    rows = audit_rows()
    head = head_of(rows)
    del rows[3]
    report = verify_chain(rows, KEY, head)
    assert report.problems[0].startswith("row id 5: edited, or a row before it was deleted")


def test_deleting_the_newest_rows_is_detected_by_the_head_only() -> None:
    rows = audit_rows()
    head = head_of(rows)
    assert verify_chain(rows[:-2], KEY, None).ok  # what the table alone can tell
    report = verify_chain(rows[:-2], KEY, head)
    assert report.problems == ["the recorded head (row 6) is not in the table: the newest rows were deleted or "
                               "rewritten (4 rows left)"]
    assert not verify_chain([], KEY, head).ok


def test_rows_appended_after_the_head_was_written_are_fine() -> None:
    rows = audit_rows()
    assert verify_chain(rows, KEY, ChainHead(4, rows[3]["hmac"])).ok


def test_rows_read_back_from_sqlite_verify(tmp_path: Path) -> None:
    """SQLite returns naive datetimes and its own JSON: the chain must not depend on either."""
    engine = create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    table = Table("audit_log", MetaData(), Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("at", DateTime(timezone=True)), Column("actor", String(200)), Column("action", String(60)),
                  Column("kind", String(40)), Column("detail", JSON), Column("hmac", String(64)))
    table.metadata.create_all(engine)
    previous = ""
    with engine.begin() as connection:
        for row in audit_rows():
            row = {key: value for key, value in row.items() if key not in ("id", "hmac")}
            previous = row_hmac(KEY, previous, row)
            connection.execute(insert(table).values(**row, hmac=previous))
    with engine.connect() as connection:
        stored = [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]
    assert stored[0]["at"].tzinfo is None
    head = ChainHead(len(stored), previous)
    assert verify_chain(stored, KEY, head).ok
    with engine.begin() as connection:
        connection.execute(table.delete().where(table.c.id == len(stored)))
    with engine.connect() as connection:
        stored = [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]
    assert not verify_chain(stored, KEY, head).ok


def test_the_head_file_keeps_the_newest_head(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "head.json"
    assert read_head(path) is None
    assert update_head(path, ChainHead(5, "e" * 64)) == ChainHead(5, "e" * 64)
    assert update_head(path, ChainHead(4, "d" * 64)) == ChainHead(5, "e" * 64)  # a late writer
    assert read_head(path) == ChainHead(5, "e" * 64)
    assert ChainHead(5, "e" * 64).log_line() == f"audit chain head: rows=5 hmac={'e' * 64}"


def test_the_audit_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert load_audit_key(SecretStr(KEY.decode()), None) == KEY
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY.decode() + "\n")
    assert load_audit_key(None, key_file) == KEY
    with pytest.raises(AuditKeyError, match="no audit key"):
        load_audit_key(None, None)
    with pytest.raises(AuditKeyError, match="shorter than 32") as raised:
        load_audit_key(SecretStr("short-key"), None)
    assert "short-key" not in str(raised.value)
