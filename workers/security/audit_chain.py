"""A tamper-evident audit log: every row carries HMAC-SHA256(key, previous row's HMAC + the row's
canonical JSON), keyed with a secret kept outside the database, so that someone who can edit the
table cannot recompute the chain. The newest link (the head) is also written where database users
cannot rewrite it (a file, and the worker's log), so that deleting the newest rows is detected too.

Rows are plain dicts, in insertion (id) order. The HMAC covers every field except ``id`` (assigned by
the database after the HMAC is computed; order is carried by the chain) and ``hmac`` itself.
Datetimes are written as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (naive ones, as SQLite returns them,
are taken as UTC), everything else as RFC 8785 canonical JSON.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from workers.security.signing import canonical_json

CHAIN_VERSION = b"slimline-audit-v1"
GENESIS = ""  # the "previous HMAC" of the first row
EXCLUDED_FIELDS = frozenset({"id", "hmac"})
MIN_KEY_CHARS = 32


class AuditKeyError(RuntimeError):
    """No usable audit key (the message never contains the key)."""


def load_audit_key(key: SecretStr | None, key_file: Path | None) -> bytes:
    """``SLIMLINE_AUDIT_KEY``, else the contents of ``SLIMLINE_AUDIT_KEY_FILE`` (stripped)."""
    if key is not None:
        text, source = key.get_secret_value(), "SLIMLINE_AUDIT_KEY"
    elif key_file is not None:
        try:
            text, source = key_file.read_text(encoding="utf-8").strip(), f"audit key file {key_file}"
        except (OSError, UnicodeDecodeError) as error:
            raise AuditKeyError(f"cannot read the audit key file {key_file}: "
                                f"{getattr(error, 'strerror', None) or 'not UTF-8'}") from None
    else:
        raise AuditKeyError("no audit key: set SLIMLINE_AUDIT_KEY or SLIMLINE_AUDIT_KEY_FILE")
    if len(text) < MIN_KEY_CHARS:
        raise AuditKeyError(f"{source} is shorter than {MIN_KEY_CHARS} characters")
    return text.encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def row_content(row: dict[str, Any]) -> bytes:
    return canonical_json(_plain({key: value for key, value in row.items() if key not in EXCLUDED_FIELDS}))


def row_hmac(key: bytes, previous_hmac: str, row: dict[str, Any]) -> str:
    """The HMAC to store with ``row``, the row before it having ``previous_hmac`` (GENESIS if none)."""
    message = CHAIN_VERSION + b"\n" + previous_hmac.encode("ascii") + b"\n" + row_content(row)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def chain(rows: list[dict[str, Any]], key: bytes, previous_hmac: str = GENESIS) -> list[str]:
    """HMACs for rows appended after ``previous_hmac`` (also: backfilling an existing table)."""
    hmacs = []
    for row in rows:
        previous_hmac = row_hmac(key, previous_hmac, row)
        hmacs.append(previous_hmac)
    return hmacs


@dataclass(frozen=True)
class ChainHead:
    """The newest link: how many rows the chain had and the last row's HMAC."""

    rows: int
    hmac: str

    def log_line(self) -> str:
        return f"audit chain head: rows={self.rows} hmac={self.hmac}"


def read_head(path: Path) -> ChainHead | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return ChainHead(int(data["rows"]), str(data["hmac"]))


def update_head(path: Path, head: ChainHead) -> ChainHead:
    """Record ``head`` unless the file already holds a newer one (writers on one host may finish out
    of order); returns the head now on file. Locked, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_head(path)
        if current is not None and current.rows >= head.rows:
            return current
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps({"rows": head.rows, "hmac": head.hmac}) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return head


@dataclass
class ChainReport:
    rows_checked: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(rows: list[dict[str, Any]], key: bytes, head: ChainHead | None) -> ChainReport:
    """Check every link, then that the chain still reaches the recorded head. Names each broken row:
    an edited row breaks its own link; an inserted one breaks its link and the next; a deleted one
    breaks the link of the row after it; deleting the newest rows leaves the head unreached."""
    report = ChainReport(rows_checked=len(rows))
    previous = GENESIS
    index = 0
    while index < len(rows):
        row = rows[index]
        stored = str(row.get("hmac") or "")
        if hmac.compare_digest(row_hmac(key, previous, row), stored):
            previous, index = stored, index + 1
            continue
        following = rows[index + 1] if index + 1 < len(rows) else None
        if following is not None and hmac.compare_digest(row_hmac(key, previous, following),
                                                         str(following.get("hmac") or "")):
            report.problems.append(f"row id {row.get('id')}: inserted (the chain skips it)")
            previous, index = str(following.get("hmac")), index + 2
            continue
        report.problems.append(f"row id {row.get('id')}: edited, or a row before it was deleted (its HMAC "
                               f"does not follow from the previous row)")
        previous, index = stored, index + 1
    if head is not None:
        position = next((number for number, row in enumerate(rows, start=1) if row.get("hmac") == head.hmac), None)
        if position is None:
            report.problems.append(f"the recorded head (row {head.rows}) is not in the table: "
                                   f"the newest rows were deleted or rewritten ({len(rows)} rows left)")
        elif position != head.rows:
            report.problems.append(f"the recorded head is row {position} of the table, the head file says row "
                                   f"{head.rows}: rows before it were deleted or inserted")
    return report
