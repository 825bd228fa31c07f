"""Signed producers: forged, unsigned and wrong-kind messages are refused with a reason code; key
rotation; a message signed by a Node.js producer (the example in docs/signing.md) verifies in Python."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from celery import Celery
from kombu.utils.json import loads as kombu_loads

from schemas import Kind
from workers.runtime.batch_task import check_task_message
from workers.runtime.names import QUEUES, TASK_NAMES
from tests.support.services import REPO_ROOT
from workers.runtime.redis_server import RedisServer
from workers.security.producers import KeyConfigError, Keyring, SigningKey, load_config_file, load_keyring, own_signing_key
from workers.security.signing import (BAD_SIGNATURE, EXPIRED, HEADER_SIGNATURE, HEADER_TIMESTAMP, KIND_NOT_ALLOWED,
                                      MALFORMED, NOT_CANONICAL, UNKNOWN_KEY, UNKNOWN_PRODUCER, UNKNOWN_TASK, UNSIGNED,
                                      VerificationError, VerifiedProducer, canonical_json, sign, signed_value,
                                      verify)
from pydantic import SecretStr

OLD_SECRET = "old-secret-" + "a" * 32
NEW_SECRET = "new-secret-" + "b" * 32
SHOP_SECRET = "shop-secret-" + "c" * 32
DOCUMENT = {"id": "d-1", "text": "Invoice from Acme Corp, 12 March 2024, EUR 4,250.", "metadata": {"b": 1, "a": [1.5]}}
DOCS_TASK = TASK_NAMES[Kind.documents]


def keyring(*, with_old_key: bool = True) -> Keyring:
    keys = {"erp-2025-01": OLD_SECRET, "erp-2025-06": NEW_SECRET} if with_old_key else {"erp-2025-06": NEW_SECRET}
    return load_keyring(None, SecretStr(json.dumps({"producers": {
        "erp": {"kinds": ["documents"], "keys": keys},
        "shop": {"kinds": ["products"], "keys": {"shop-1": SHOP_SECRET}},
    }})))


def signed(payload: object = DOCUMENT, key: SigningKey = SigningKey("erp-2025-06", NEW_SECRET.encode()),
           producer: str = "erp", task: str = DOCS_TASK, timestamp: int = 1_767_225_600_000) -> dict:
    return sign(task, producer, timestamp, payload, key)


def test_a_signed_message_verifies_and_names_its_producer() -> None:
    result = verify(signed(), DOCS_TASK, DOCUMENT, keyring(), Kind.documents)
    assert result == VerifiedProducer("erp", "erp-2025-06", 1_767_225_600_000)


def test_the_signature_ignores_key_order_and_whitespace_of_the_wire_form() -> None:
    headers = signed()
    as_sent_by_another_serializer = json.loads(json.dumps(DOCUMENT, indent=3, ensure_ascii=True))
    reordered = {"metadata": {"a": [1.5], "b": 1}, "text": DOCUMENT["text"], "id": "d-1"}
    assert isinstance(verify(headers, DOCS_TASK, reordered, keyring(), Kind.documents), VerifiedProducer)
    assert isinstance(verify(headers, DOCS_TASK, as_sent_by_another_serializer, keyring(), Kind.documents),
                      VerifiedProducer)


@pytest.mark.parametrize("tamper", ["payload", "timestamp", "producer", "secret", "task", "signature"])
def test_forged_messages_are_refused(tamper: str) -> None:
    headers, payload, task = signed(), dict(DOCUMENT), DOCS_TASK
    if tamper == "payload":
        payload["text"] = "Pay EUR 9,999,999 to IBAN ..."
    elif tamper == "timestamp":
        headers[HEADER_TIMESTAMP] += 1
    elif tamper == "producer":  # shop claims to be erp, signing with its own key under erp's key id
        headers = signed(key=SigningKey("erp-2025-06", SHOP_SECRET.encode()))
    elif tamper == "secret":
        headers = signed(key=SigningKey("erp-2025-06", b"guessed-" + b"x" * 40))
    elif tamper == "task":  # a documents signature replayed as a products task
        task = TASK_NAMES[Kind.products]
    else:
        headers[HEADER_SIGNATURE] = "0" * 64
    result = verify(headers, task, payload, keyring(), Kind.documents if tamper != "task" else Kind.products)
    assert isinstance(result, VerificationError)
    assert result.code == BAD_SIGNATURE
    assert result.item_error.field == "signature" and result.item_error.reason.startswith("bad_signature: ")


def test_a_task_name_that_does_not_match_the_kind_is_refused() -> None:
    result = verify(signed(), DOCS_TASK, DOCUMENT, keyring(), Kind.transactions)
    assert isinstance(result, VerificationError) and result.code == UNKNOWN_TASK


@pytest.mark.parametrize("headers", [None, {}, {"task": DOCS_TASK, "id": "x"}, "not a dict"])
def test_unsigned_messages_are_refused(headers: object) -> None:
    result = verify(headers, DOCS_TASK, DOCUMENT, keyring(), Kind.documents)
    assert isinstance(result, VerificationError) and result.code == UNSIGNED


@pytest.mark.parametrize("change", [
    {HEADER_SIGNATURE: None}, {HEADER_SIGNATURE: "ABC"}, {HEADER_SIGNATURE: "A" * 64}, {HEADER_TIMESTAMP: -1},
    {HEADER_TIMESTAMP: "01"}, {HEADER_TIMESTAMP: True}, {HEADER_TIMESTAMP: 1.5}, {"slimline_producer": "erp\nadmin"},
    {"slimline_key_id": ""}, {"slimline_producer": ["erp"]},
])
def test_malformed_signature_headers_are_refused(change: dict) -> None:
    headers = signed() | change
    result = verify(headers, DOCS_TASK, DOCUMENT, keyring(), Kind.documents)
    assert isinstance(result, VerificationError) and result.code == MALFORMED


def test_a_producer_may_only_send_its_kinds() -> None:
    shop_key = SigningKey("shop-1", SHOP_SECRET.encode())
    transaction = {"id": "t-1", "amount": "12.50"}
    headers = signed(transaction, shop_key, "shop", TASK_NAMES[Kind.transactions])
    result = verify(headers, TASK_NAMES[Kind.transactions], transaction, keyring(), Kind.transactions)
    assert isinstance(result, VerificationError) and result.code == KIND_NOT_ALLOWED
    assert "shop" in result.reason and "transactions" in result.reason
    product = {"id": "p-1", "title": "Mug"}
    ok = verify(signed(product, shop_key, "shop", TASK_NAMES[Kind.products]), TASK_NAMES[Kind.products], product,
                keyring(), Kind.products)
    assert ok == VerifiedProducer("shop", "shop-1", 1_767_225_600_000)


def test_unknown_producers_are_refused() -> None:
    headers = signed(producer="intruder")
    result = verify(headers, DOCS_TASK, DOCUMENT, keyring(), Kind.documents)
    assert isinstance(result, VerificationError) and result.code == UNKNOWN_PRODUCER


def test_a_rotated_key_works_while_allowed_and_stops_once_removed() -> None:
    old_key = SigningKey("erp-2025-01", OLD_SECRET.encode())
    by_old_key = signed(key=old_key)
    by_new_key = signed()
    assert isinstance(verify(by_old_key, DOCS_TASK, DOCUMENT, keyring(), Kind.documents), VerifiedProducer)
    assert isinstance(verify(by_new_key, DOCS_TASK, DOCUMENT, keyring(), Kind.documents), VerifiedProducer)
    after_rotation = keyring(with_old_key=False)
    refused = verify(by_old_key, DOCS_TASK, DOCUMENT, after_rotation, Kind.documents)
    assert isinstance(refused, VerificationError) and refused.code == UNKNOWN_KEY
    assert isinstance(verify(by_new_key, DOCS_TASK, DOCUMENT, after_rotation, Kind.documents), VerifiedProducer)


def test_expiry_is_off_by_default_and_bounded_when_on() -> None:
    year_old = signed(timestamp=1_700_000_000_000)
    now = 1_700_000_000_000 + 365 * 86_400_000
    assert isinstance(verify(year_old, DOCS_TASK, DOCUMENT, keyring(), Kind.documents), VerifiedProducer)
    expired = verify(year_old, DOCS_TASK, DOCUMENT, keyring(), Kind.documents, max_age_seconds=86_400, now=now)
    assert isinstance(expired, VerificationError) and expired.code == EXPIRED
    fresh = signed(timestamp=now - 60_000)
    assert isinstance(verify(fresh, DOCS_TASK, DOCUMENT, keyring(), Kind.documents, max_age_seconds=86_400, now=now),
                      VerifiedProducer)


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": [1.0, 1e21, 1e-7, -0.0, 0.1], "a": "é\n\u2028"}) == \
        '{"a":"é\\n\u2028","b":[1,1e+21,1e-7,0,0.1]}'.encode()
    # Keys sort by UTF-16 code units: U+1F600 (surrogates D83D DE00) before U+FFFF.
    assert canonical_json({"\uffff": 1, "\U0001F600": 2}) == '{"\U0001F600":2,"\uffff":1}'.encode()


@pytest.mark.parametrize("payload", [{"n": 2**53}, {"n": float("nan")}, {"s": "\ud800"}, {1: "x"}, {"d": object()}])
def test_values_json_cannot_carry_exactly_are_refused(payload: object) -> None:
    key = SigningKey("erp-2025-06", NEW_SECRET.encode())
    with pytest.raises(ValueError):
        sign(DOCS_TASK, "erp", 1, payload, key)
    headers = signed({"id": "x"})
    result = verify(headers, DOCS_TASK, payload, keyring(), Kind.documents)
    assert isinstance(result, VerificationError) and result.code == NOT_CANONICAL


def test_keys_files_in_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "keys.toml"
    toml.write_text(f'[producers.erp]\nkinds = ["documents"]\nkeys = {{ "k1" = "{OLD_SECRET}", "k2" = "{NEW_SECRET}" }}\n'
                    f'signing_key = "k1"\n')
    ring = load_keyring(toml, None)
    assert ring.signing_key("erp") == SigningKey("k1", OLD_SECRET.encode())
    as_json = tmp_path / "keys.json"
    as_json.write_text(json.dumps({"producers": {"erp": {"kinds": ["*"], "keys": {"k1": OLD_SECRET, "k2": NEW_SECRET}}}}))
    ring = load_keyring(as_json, None)
    assert ring.signing_key("erp").key_id == "k2"  # default: the last key listed
    assert ring.get("erp").kinds == frozenset(Kind)
    assert OLD_SECRET not in repr(ring) and OLD_SECRET not in repr(load_config_file(as_json))
    assert own_signing_key("erp", None, None, ring) == SigningKey("k2", NEW_SECRET.encode())
    assert own_signing_key("erp", "mine", SecretStr(SHOP_SECRET), ring) == SigningKey("mine", SHOP_SECRET.encode())
    assert not load_keyring(None, None)


@pytest.mark.parametrize("config, message", [
    ({"producers": {"erp": {"kinds": ["documents"], "keys": {"k": "short-secret"}}}}, "shorter than 32"),
    ({"producers": {"erp": {"kinds": ["mail"], "keys": {"k": "s" * 40}}}}, "unknown kinds"),
    ({"producers": {"e r p": {"kinds": ["documents"], "keys": {"k": "s" * 40}}}}, "producer id"),
    ({"producers": {"erp": {"kinds": ["documents"], "keys": {"k": "s" * 40}, "signing_key": "x"}}}, "signing_key"),
])
def test_bad_keys_files_say_what_is_wrong_without_the_secret(tmp_path: Path, config: dict, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(config))
    with pytest.raises(KeyConfigError, match=message) as raised:
        load_keyring(path, None)
    assert "s" * 40 not in str(raised.value) and "short-secret" not in str(raised.value)
    with pytest.raises(KeyConfigError, match="not valid TOML"):
        (tmp_path / "k.toml").write_text("[producers\n")
        load_keyring(tmp_path / "k.toml", None)


def test_celery_carries_the_signature_headers_at_the_top_of_the_message(tmp_path: Path) -> None:
    """What the Python producer will send: Celery's ``send_task(headers=...)`` puts them where
    the worker reads ``message.headers``; ``declare=[]`` keeps the producer to LPUSH only."""
    with RedisServer(tmp_path / "redis") as server:
        app = Celery("producer", broker=server.url)
        headers = signed()
        app.send_task(DOCS_TASK, args=[DOCUMENT], kwargs={}, queue=QUEUES[Kind.documents], headers=headers, declare=[])
        raw = server_pop(server, QUEUES[Kind.documents])
    message, body = decode(raw)
    assert {name: message["headers"][name] for name in headers} == headers
    assert verify(message["headers"], message["headers"]["task"], body[0][0], keyring(), Kind.documents) == \
        VerifiedProducer("erp", "erp-2025-06", 1_767_225_600_000)


def server_pop(server: RedisServer, queue: str) -> bytes:
    import redis

    raw = redis.Redis.from_url(server.url).rpop(queue)
    assert raw is not None, f"nothing in {queue}"
    return raw


def decode(raw: bytes) -> tuple[dict, list]:
    """As kombu's Redis transport and Celery decode a message (base64 body, kombu's JSON)."""
    message = json.loads(raw)
    assert message["content-type"] == "application/json" and message["properties"]["body_encoding"] == "base64"
    body = kombu_loads(base64.b64decode(message["body"]).decode(message["content-encoding"]))
    check_task_message(message["headers"], body, max_eta_seconds=60)
    return message, body


def node_example(tmp_path: Path) -> Path:
    text = (REPO_ROOT / "docs" / "signing.md").read_text()
    code = re.search(r"```js\n(.*?)```", text, re.S)
    assert code, "docs/signing.md has no ```js example"
    script = tmp_path / "sign-documents.js"
    script.write_text(code.group(1))
    return script


TRICKY_DOCUMENTS = [
    {"id": "d-1", "text": "Hello Alice"},
    {"id": "d-2", "text": "Zoë paid €4,250.00 — “quoted” \u2028 line\tsep \u007f 😀", "language": "fr",
     "metadata": {"z": 1, "a": [1.0, 0.1, 1e21, 1e-7, -0.0, 123456789012345, True, None], "\U0001F600": "x",
                  "\uffff": "y", "nested": {"b": "", "a": {"c": [], "d": {}}}}},
]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js (node) is not installed")
def test_a_nodejs_signed_message_verifies_in_python(tmp_path: Path) -> None:
    source = tmp_path / "documents.json"
    source.write_text(json.dumps(TRICKY_DOCUMENTS, ensure_ascii=False), encoding="utf-8")
    env = {"SLIMLINE_PRODUCER_ID": "erp", "SLIMLINE_SIGNING_KEY_ID": "erp-2025-01", "SLIMLINE_SIGNING_KEY": OLD_SECRET,
           "PATH": "/usr/bin:/bin:/usr/local/bin"}
    run = subprocess.run(["node", str(node_example(tmp_path)), str(source)], env=env, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    lines = run.stdout.decode().splitlines()
    assert len(lines) == len(TRICKY_DOCUMENTS)
    with RedisServer(tmp_path / "redis") as server:
        import redis

        client = redis.Redis.from_url(server.url)
        for line in lines:
            client.lpush("documents", line)
        raws = [server_pop(server, "documents") for _ in lines]
    for raw, original in zip(raws, TRICKY_DOCUMENTS):
        message, body = decode(raw)
        payload = body[0][0]
        assert payload == original
        result = verify(message["headers"], message["headers"]["task"], payload, keyring(), Kind.documents)
        assert isinstance(result, VerifiedProducer), result
        assert result.producer_id == "erp" and result.key_id == "erp-2025-01"
        # ...and one changed character breaks it.
        forged = dict(payload, text=payload["text"] + " ")
        assert verify(message["headers"], DOCS_TASK, forged, keyring(), Kind.documents).code == BAD_SIGNATURE


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js (node) is not installed")
def test_the_nodejs_example_refuses_integers_python_would_read_differently(tmp_path: Path) -> None:
    source = tmp_path / "documents.json"
    source.write_text('[{"id": "d-1", "text": "x", "metadata": {"n": 9007199254740993}}]')
    env = {"SLIMLINE_PRODUCER_ID": "erp", "SLIMLINE_SIGNING_KEY_ID": "k", "SLIMLINE_SIGNING_KEY": OLD_SECRET,
           "PATH": "/usr/bin:/bin:/usr/local/bin"}
    run = subprocess.run(["node", str(node_example(tmp_path)), str(source)], env=env, capture_output=True, timeout=60)
    assert run.returncode != 0 and b"2^53-1" in run.stderr


def test_the_workers_own_messages_also_authenticate_their_kwargs() -> None:
    workers = load_keyring(None, SecretStr(json.dumps({"producers": {"slimline": {"kinds": ["*"], "keys": {"w1": "w" * 40}}}})))
    kwargs = {"attempt": 2, "producer": "erp", "sent_at": 1_767_225_600.0}
    value = signed_value([DOCUMENT], kwargs, "slimline", "slimline")
    assert value == [DOCUMENT, kwargs] and signed_value([DOCUMENT], kwargs, "erp", "slimline") == DOCUMENT
    headers = sign(DOCS_TASK, "slimline", 1_767_225_600_000, value, workers.signing_key("slimline"))
    assert isinstance(verify(headers, DOCS_TASK, value, workers, Kind.documents), VerifiedProducer)
    for change in ({"attempt": 1}, {"producer": "shop"}):
        altered = signed_value([DOCUMENT], kwargs | change, "slimline", "slimline")
        assert verify(headers, DOCS_TASK, altered, workers, Kind.documents).code == BAD_SIGNATURE
