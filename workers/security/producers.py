"""Who may enqueue what: producers, their HMAC keys (several at once, for rotation), the kinds of work
each may send, and the Redis users of the deployment. Read from a JSON or TOML file, or from the same
JSON in an environment variable. Secrets never appear in reprs or error messages.

File format (TOML; JSON has the same structure)::

    [producers.erp]
    kinds = ["documents"]                       # or ["*"] for every kind
    keys = { "erp-2025-01" = "…", "erp-2025-06" = "…" }   # key id -> secret (>= 32 characters)
    signing_key = "erp-2025-06"                 # the key this producer signs with (default: the last one)
    redis_password_sha256 = "…"                 # its Redis user's password, hashed (`slimline redis-acl`)

    [producers.slimline]                        # the workers' own identity (retries, dlq replay)
    kinds = ["*"]
    keys = { "workers-2025-01" = "…" }

    [redis.worker]
    password_sha256 = "…"
    extra_keys = ["txf:*"]                      # state other components keep in the broker's Redis
    extra_commands = ["hincrby"]
    [redis.operator]
    password_sha256 = "…"
    [redis.gateway]                             # the HTTP gateway, if one runs (`slimline serve`)
    password_sha256 = "…"
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from schemas import Kind

# Producer and key ids go into the signed string, one per line, and into Redis user names: no
# whitespace, no separators that could make two different (id, key) pairs sign the same bytes.
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_SECRET_CHARS = 32
ALL_KINDS = "*"


class KeyConfigError(ValueError):
    """The producer keys are missing or malformed; the message says where, never what a secret is."""


class ProducerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[str] = Field(min_length=1)
    keys: dict[str, SecretStr] = Field(min_length=1)
    signing_key: str | None = None
    redis_password_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        known = {kind.value for kind in Kind} | {ALL_KINDS}
        unknown = sorted(set(kinds) - known)
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; kinds are {sorted(known)}")
        return kinds

    @field_validator("keys")
    @classmethod
    def _strong_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, secret in keys.items():
            if not IDENTIFIER.match(key_id):
                raise ValueError(f"key id {key_id[:40]!r} must match {IDENTIFIER.pattern}")
            if len(secret.get_secret_value()) < MIN_SECRET_CHARS:
                raise ValueError(f"secret of key {key_id!r} is shorter than {MIN_SECRET_CHARS} characters")
        return keys


class RedisUserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
    password_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    # More key patterns and commands for components that keep state in the broker's Redis.
    extra_keys: list[str] = []
    extra_commands: list[str] = []

    @field_validator("extra_keys", "extra_commands")
    @classmethod
    def _no_spaces(cls, values: list[str]) -> list[str]:
        if any(not value or any(char.isspace() for char in value) for value in values):
            raise ValueError("entries must be non-empty and contain no whitespace")
        return values


class RedisUsersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker: RedisUserConfig = RedisUserConfig()
    operator: RedisUserConfig = RedisUserConfig()
    gateway: RedisUserConfig | None = None  # `slimline serve`, when one runs (`[redis.gateway]`)


class SecurityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    producers: dict[str, ProducerConfig] = {}
    redis: RedisUsersConfig = RedisUsersConfig()

    @field_validator("producers")
    @classmethod
    def _producer_ids(cls, producers: dict[str, ProducerConfig]) -> dict[str, ProducerConfig]:
        for producer_id, producer in producers.items():
            if not IDENTIFIER.match(producer_id):
                raise ValueError(f"producer id {producer_id[:40]!r} must match {IDENTIFIER.pattern}")
            if producer.signing_key is not None and producer.signing_key not in producer.keys:
                raise ValueError(f"producer {producer_id!r}: signing_key {producer.signing_key!r} is not in its keys")
        return producers


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class Producer:
    producer_id: str
    keys: dict[str, bytes] = field(repr=False)
    kinds: frozenset[Kind]
    signing_key_id: str

    def may_send(self, kind: Kind) -> bool:
        return kind in self.kinds

    @property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.signing_key_id, self.keys[self.signing_key_id])


@dataclass(frozen=True)
class Keyring:
    """Every producer a worker accepts. Empty means: no signing configured."""

    producers: dict[str, Producer] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.producers)

    def get(self, producer_id: str) -> Producer | None:
        return self.producers.get(producer_id)

    def signing_key(self, producer_id: str) -> SigningKey:
        producer = self.producers.get(producer_id)
        if producer is None:
            raise KeyConfigError(f"no keys for producer {producer_id!r} in the producer keys")
        return producer.signing_key

    @classmethod
    def from_config(cls, config: SecurityConfig) -> Keyring:
        producers = {}
        for producer_id, entry in config.producers.items():
            kinds = frozenset(Kind) if ALL_KINDS in entry.kinds else frozenset(Kind(kind) for kind in entry.kinds)
            keys = {key_id: secret.get_secret_value().encode("utf-8") for key_id, secret in entry.keys.items()}
            producers[producer_id] = Producer(producer_id, keys, kinds, entry.signing_key or list(keys)[-1])
        return cls(producers)


def parse_config(data: Any, source: str) -> SecurityConfig:
    try:
        return SecurityConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
                             for detail in error.errors(include_url=False, include_input=False))
        raise KeyConfigError(f"{source}: {problems}") from None


def load_config_file(path: Path) -> SecurityConfig:
    """A ``.toml`` file is read as TOML, anything else as JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KeyConfigError(f"cannot read producer keys file {path}: {error.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise KeyConfigError(f"{path} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: "
                             f"{str(error).splitlines()[0]}") from None
    return parse_config(data, str(path))


def load_config(keys_file: Path | None, keys_json: SecretStr | None) -> SecurityConfig:
    """The file if given, else the JSON from the environment, else an empty configuration."""
    if keys_file is not None:
        return load_config_file(keys_file)
    if keys_json is not None:
        try:
            data = json.loads(keys_json.get_secret_value())
        except json.JSONDecodeError as error:
            raise KeyConfigError(f"SLIMLINE_PRODUCER_KEYS is not valid JSON (column {error.colno})") from None
        return parse_config(data, "SLIMLINE_PRODUCER_KEYS")
    return SecurityConfig()


def load_keyring(keys_file: Path | None, keys_json: SecretStr | None) -> Keyring:
    return Keyring.from_config(load_config(keys_file, keys_json))


def own_signing_key(producer_id: str, key_id: str | None, secret: SecretStr | None,
                    keyring: Keyring) -> SigningKey | None:
    """A producer process's key: SLIMLINE_SIGNING_KEY_ID/SLIMLINE_SIGNING_KEY, else its entry in the
    keys; None when it has neither (it sends unsigned messages, which only an unsigned worker accepts)."""
    if (key_id is None) != (secret is None):
        raise KeyConfigError("set both SLIMLINE_SIGNING_KEY_ID and SLIMLINE_SIGNING_KEY, or neither")
    if key_id is not None and secret is not None:
        if not IDENTIFIER.match(key_id):
            raise KeyConfigError(f"SLIMLINE_SIGNING_KEY_ID must match {IDENTIFIER.pattern}")
        if len(secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise KeyConfigError(f"SLIMLINE_SIGNING_KEY is shorter than {MIN_SECRET_CHARS} characters")
        return SigningKey(key_id, secret.get_secret_value().encode("utf-8"))
    producer = keyring.get(producer_id)
    return producer.signing_key if producer else None
