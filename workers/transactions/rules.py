"""Rules from a file (YAML), evaluated by simpleeval: a safe subset of Python expressions over named
values (no attribute access to internals, no imports, no assignment; never ``eval``).

File format (see data/rules.yaml)::

    lists:      {name: [values]}          usable in expressions, e.g. ``country in blocked_countries``
    constants:  {name: number}
    rules:      [{code, action, description, when}]

Order (Stripe Radar's): every rule is evaluated, so that each decision lists all the rules that fired,
but the action is decided by ``allow`` rules first, then ``block``, then ``review``; within an action
the first rule in file order that fired is the deciding one. A rule referring to an account feature
is skipped when the features are unavailable (the decision says so). A rule whose value is absent
(e.g. no previous transaction) does not fire.

The rule set's version is the SHA-256 of the file's bytes: any change, even a comment, is a new version,
and each decision stores the version that made it. Versions written in the review console live in the
database (``rule_versions``): workers use the newest promoted one over the file (:class:`PromotedRules`),
and its version reads ``v<number>:sha256:<digest>``.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from simpleeval import InvalidExpression, NameNotDefined, SimpleEval

from workers.transactions.signals import ACCOUNT_SIGNALS

log = logging.getLogger(__name__)

DEFAULT_RULES_FILE = Path(__file__).parent / "data" / "rules.yaml"
ACTIONS = ("allow", "block", "review")  # precedence order
CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{2,63}$")

TRANSACTION_NAMES = frozenset({
    "amount", "currency", "country", "channel", "mcc", "iban_country", "foreign_iban", "hour", "night", "weekday",
})  # fmt: skip
ACCOUNT_NAMES = frozenset(ACCOUNT_SIGNALS)


class RuleFileError(ValueError):
    """The rule file cannot be used; the message names the rule and the problem."""


def _meta(metadata: dict[str, Any]) -> Any:
    def meta(name: str, default: Any = None) -> Any:
        """The bank's own signal from the transaction's metadata, e.g. ``meta("device_score", 0)``."""
        return metadata.get(name, default)

    return meta


FUNCTIONS = {"abs": abs, "min": min, "max": max, "meta": None}


@dataclass(frozen=True)
class Rule:
    code: str
    action: str
    description: str
    when: str
    parsed: ast.AST = field(repr=False, compare=False)
    needs_account: bool


@dataclass(frozen=True)
class Evaluation:
    fired: list[Rule]
    skipped: list[str]  # codes of rules whose outcome needed an account feature that was unavailable
    action: str | None  # None: no rule decided
    deciding: Rule | None


def _names(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


class RuleSet:
    def __init__(self, rules: list[Rule], values: dict[str, Any], version: str, path: Path | str) -> None:
        self.rules = rules
        self.values = values
        self.version = version
        self.path = path  # where the rules came from: a file, or a version in the database
        self._ordered = sorted(rules, key=lambda rule: ACTIONS.index(rule.action))  # stable: file order kept
        self._evaluator = SimpleEval(names={}, functions=dict(FUNCTIONS))  # one per process: not thread-safe

    @classmethod
    def load(cls, path: Path | None = None) -> RuleSet:
        path = Path(path or DEFAULT_RULES_FILE)
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise RuleFileError(f"cannot read rules from {path}: {error}") from None
        return cls.parse(raw, path)

    @classmethod
    def parse(cls, raw: bytes, path: Path | str, version: str | None = None) -> RuleSet:
        """Rules from a YAML document's bytes; ``path`` names where they came from in error messages.
        The version defaults to the SHA-256 of the bytes."""
        try:
            document = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise RuleFileError(f"cannot read rules from {path}: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
            raise RuleFileError(f"{path}: expected a mapping with a 'rules' list")
        values: dict[str, Any] = {}
        for name, items in (document.get("lists") or {}).items():
            if not isinstance(items, list):
                raise RuleFileError(f"{path}: list {name!r} is not a list")
            values[name] = frozenset(str(item) for item in items)
        for name, number in (document.get("constants") or {}).items():
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise RuleFileError(f"{path}: constant {name!r} is not a number")
            values[name] = number
        known = TRANSACTION_NAMES | ACCOUNT_NAMES | set(values) | set(FUNCTIONS) | {"True", "False", "None"}
        rules, codes = [], set()
        for position, entry in enumerate(document["rules"], start=1):
            rules.append(cls._rule(path, position, entry, known, codes))
        version = version or "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
        rule_set = cls(rules, values, version, path)
        rule_set._dry_run()
        return rule_set

    def _dry_run(self) -> None:
        """Evaluate every rule once on typical values, so that a construct the safe evaluator refuses
        (attribute access, a literal tuple...) fails when the file is loaded, not on a live transaction."""
        sample: dict[str, Any] = {name: 1 for name in ACCOUNT_NAMES} | {"night": False, "foreign_iban": False}
        sample |= {"amount": 100.0, "currency": "EUR", "country": "FR", "channel": "online", "mcc": "5411",
                   "iban_country": "FR", "hour": 12, "weekday": 2}
        for rule in self.rules:
            try:
                self._evaluator.names = {**sample, **self.values}
                self._evaluator.functions["meta"] = _meta({})
                self._evaluator.eval(rule.when, previously_parsed=rule.parsed)
            except InvalidExpression as error:
                raise RuleFileError(f"{self.path} ({rule.code}): {error}") from None

    @staticmethod
    def _rule(path: Path, position: int, entry: Any, known: set[str], codes: set[str]) -> Rule:
        where = f"{path}, rule {position}"
        if not isinstance(entry, dict) or set(entry) - {"code", "action", "description", "when"}:
            raise RuleFileError(f"{where}: expected keys code, action, description, when")
        code, action, when = entry.get("code"), entry.get("action"), entry.get("when")
        if not isinstance(code, str) or not CODE_PATTERN.match(code):
            raise RuleFileError(f"{where}: code {code!r} must be UPPER_SNAKE_CASE (3-64 characters)")
        if code in codes:
            raise RuleFileError(f"{where}: code {code} is used twice")
        codes.add(code)
        if action not in ACTIONS:
            raise RuleFileError(f"{where} ({code}): action must be one of {', '.join(ACTIONS)}")
        if not isinstance(when, str) or not when.strip():
            raise RuleFileError(f"{where} ({code}): 'when' must be an expression")
        try:
            parsed = SimpleEval.parse(when)
        except SyntaxError as error:
            raise RuleFileError(f"{where} ({code}): invalid expression: {error.msg}") from None
        if not isinstance(parsed, ast.Expr):
            raise RuleFileError(f"{where} ({code}): 'when' must be an expression, not a statement")
        unknown = _names(parsed) - known
        if unknown:
            raise RuleFileError(f"{where} ({code}): unknown name(s) {', '.join(sorted(unknown))}")
        return Rule(code, action, str(entry.get("description") or ""), when.strip(), parsed,
                    needs_account=bool(_names(parsed) & ACCOUNT_NAMES))

    def evaluate(self, signals: dict[str, Any], metadata: dict[str, Any]) -> Evaluation:
        """Every rule's outcome for one transaction; the action follows Radar's order."""
        evaluator = self._evaluator
        evaluator.names = {**signals, **self.values}
        evaluator.functions["meta"] = _meta(metadata)
        fired, skipped = [], []
        for rule in self._ordered:
            try:
                if evaluator.eval(rule.when, previously_parsed=rule.parsed):
                    fired.append(rule)
            except NameNotDefined:
                if not rule.needs_account:
                    raise
                skipped.append(rule.code)
            except (TypeError, ArithmeticError):
                continue  # a value the rule uses is absent (None) or zero where it divides: no fire
        deciding = fired[0] if fired else None
        return Evaluation(fired, skipped, deciding.action if deciding else None, deciding)


def database_version(number: int, sha256: str) -> str:
    """How a decision names a rule version from the database: its number and the digest of its document."""
    return f"v{number}:sha256:{sha256[:16]}"


class PromotedRules:
    """The rules a worker decides with: the newest version promoted in the review console (table
    ``rule_versions``), else the rule file. The database is asked again at most every ``refresh_seconds``
    (one indexed query; the document is read only when the promoted version changed). If it cannot be
    read, the rules in use stay in use: a database outage never stops decisions."""

    def __init__(self, fallback: RuleSet, database_url: str | None, refresh_seconds: float, *,
                 refresh_on_read: bool = True) -> None:
        """``refresh_on_read=False``: :meth:`current` never waits on the database; the owner calls :meth:`refresh`
        (the gateway does, off its event loop)."""
        self.fallback = fallback
        self.database_url = database_url if refresh_seconds > 0 else None
        self.refresh_seconds = refresh_seconds
        self.refresh_on_read = refresh_on_read
        self._rules = fallback
        self._loaded: tuple[int, str] | None = None  # (number, sha256) of the version in use
        self._checked_at = -float("inf")
        self._store: Any = None

    def current(self) -> RuleSet:
        if self.refresh_on_read and self.database_url is not None \
                and time.monotonic() - self._checked_at >= self.refresh_seconds:
            self.refresh()
        return self._rules

    def refresh(self) -> None:
        """Look up the promoted version now."""
        if self.database_url is None:
            return
        self._checked_at = time.monotonic()
        try:
            self._refresh()
        except Exception as error:  # noqa: BLE001 - keep deciding with the rules in use
            log.warning("could not look up the promoted rule version, keeping %s: %s", self._rules.version,
                        type(error).__name__)

    def _refresh(self) -> None:
        if self._store is None:
            from sqlalchemy.engine import make_url

            from workers.db.store import OutcomeStore  # imported late: backtests and tests need no database

            url = make_url(self.database_url)
            if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
                return  # no database here (yet): never create an empty SQLite file as a side effect
            self._store = OutcomeStore.from_url(self.database_url)
        promoted = self._store.promoted_rule_version()
        if promoted is None:
            self._rules, self._loaded = self.fallback, None
            return
        key = (promoted["id"], promoted["sha256"])
        if key == self._loaded:
            return
        document = self._store.rule_version(promoted["id"])["document"]
        try:
            rules = RuleSet.parse(document.encode("utf-8"), f"rule version {promoted['id']}",
                                  database_version(*key))
        except RuleFileError as error:  # checked when it was drafted: only a hand-edited row gets here
            log.error("promoted rule version %d cannot be used, keeping %s: %s", promoted["id"], self._rules.version,
                      error)
            self._loaded = key
            return
        log.info("rules: now %s (was %s)", rules.version, self._rules.version)
        self._rules, self._loaded = rules, key
