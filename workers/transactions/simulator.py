"""A seeded simulator of card and account transactions with injected fraud, for training the default
risk model, testing rules and benchmarking detection. Same seed, same output (Python's ``random``,
whose sequences are stable across versions).

Accounts. Each account has a home country, a daily activity rate (log-normal, median ~2 payments a
day), a spending scale (log-normal), and 6-20 regular merchants, mostly in its home country, each
with an ISO 18245 MCC and a channel. Payments happen mostly by day (few at night); amounts are
log-normal around the merchant category's typical basket times the account's scale. About 1 in 4
accounts pays rent by transfer once a month; a few are small businesses paying invoices by transfer,
sometimes just under 10,000. Legitimate behaviour that looks odd is simulated on purpose, so that rules
have false positives: trips abroad (new country, hotel payments over 1,000), occasional large
purchases, regular gamblers, app-store sessions of several small online payments.

Metadata: ``device_score`` (the bank's device risk, 0-1; high for a new device), ``sca_passed`` on
online card payments (strong customer authentication), and ``pca_1``, a weak anonymised signal.

Fraud (label 1), injected as episodes at a rate of about 0.3-0.5 % of payments:
- card testing: 5-25 small online payments (0.50-5.00) at unfamiliar online merchants within minutes,
  sometimes followed by one or two larger online purchases;
- account takeover: a new device and country, then 1-3 large transfers (1,500-15,000) to a foreign
  IBAN within an hour, often at night;
- mule structuring: 2-6 transfers or cash withdrawals just under the 10,000 reporting threshold
  (8,000-9,990) over one to four days;
- merchant-category anomaly: 1-3 payments in a high-risk category (crypto, gift cards, money transfer,
  gambling) the account never used, at 8-40 times its usual amount.

Output: dicts in the ``Transaction`` contract plus ``label`` (0/1) and ``scenario`` (fraud kind or
"legit"), sorted by timestamp (JSON lines with :func:`write_jsonl`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HOME_COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "BE", "PT", "AT", "IE", "FI")
TRAVEL_COUNTRIES = ("GB", "US", "CH", "GR", "HR", "MA", "TH", "TR", "JP", "MX")
TAKEOVER_COUNTRIES = ("NG", "RO", "UA", "BR", "VN", "ID", "PH", "RU", "CN", "US")

# MCC, typical basket, channel, name stem
CATEGORIES = (
    ("5411", 45.0, "card_present", "Grocery"), ("5812", 30.0, "card_present", "Restaurant"),
    ("5814", 9.0, "card_present", "Fast Food"), ("5541", 55.0, "card_present", "Fuel"),
    ("5912", 18.0, "card_present", "Pharmacy"), ("5311", 70.0, "card_present", "Department Store"),
    ("4111", 4.0, "card_present", "Transit"), ("5999", 35.0, "online", "Webshop"),
    ("5732", 180.0, "online", "Electronics"), ("4121", 16.0, "online", "Rides"),
    ("5815", 6.0, "online", "Digital Media"), ("4899", 25.0, "online", "Streaming"),
    ("6011", 120.0, "atm", "ATM"), ("7011", 160.0, "card_present", "Hotel"),
)  # fmt: skip
HIGH_RISK = (("6051", "Crypto Exchange"), ("6540", "Gift Card Shop"), ("4829", "Money Transfer"),
             ("7995", "Casino"))  # fmt: skip
NIGHT_WEIGHT = 0.03


@dataclass(frozen=True)
class SimulationConfig:
    accounts: int = 2000
    days: int = 60
    start: datetime = datetime(2024, 3, 1, tzinfo=UTC)
    seed: int = 7
    fraud_episodes_per_account_day: float = 0.0012


@dataclass
class _Merchant:
    name: str
    mcc: str
    basket: float
    channel: str
    country: str


@dataclass
class _Account:
    id: str
    home: str
    rate: float
    scale: float
    merchants: list[_Merchant]
    rent: float | None
    invoices: bool
    gambler: bool
    traveller: bool
    saver: bool


class _Writer:
    """Builds contract dicts; ids are sequential so the same seed gives the same ids."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, account: _Account, when: datetime, amount: float, *, channel: str, country: str,
                 merchant: _Merchant | None = None, iban: str | None = None, device_score: float,
                 rng: random.Random, label: int = 0, scenario: str = "legit") -> dict[str, Any]:
        self.count += 1
        metadata: dict[str, Any] = {"pca_1": round(rng.gauss(0.4 if label else 0.0, 1.0), 3)}
        if channel != "atm" and rng.random() < 0.8:  # the bank scores the device of most payments
            metadata["device_score"] = round(device_score, 3)
        if channel == "online":
            metadata["sca_passed"] = rng.random() < (0.15 if label else 0.6)
        item: dict[str, Any] = {
            "id": f"tx-{self.count:09d}",
            "account_id": account.id,
            "amount": f"{max(amount, 0.01):.2f}",
            "currency": "EUR",
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "country": country,
            "channel": channel,
            "metadata": metadata,
            "label": label,
            "scenario": scenario,
        }
        if merchant is not None:
            item["merchant"] = {"name": merchant.name, "category_code": merchant.mcc}
        if iban is not None:
            item["counterparty_iban"] = iban
        return item


def _iban(rng: random.Random, country: str) -> str:
    """Format-valid (the check digits are random, not computed)."""
    return f"{country}{rng.randint(10, 99)}" + "".join(str(rng.randint(0, 9)) for _ in range(18))


def _daytime(rng: random.Random, day: datetime) -> datetime:
    if rng.random() < NIGHT_WEIGHT:
        hour = rng.uniform(0, 6)
    else:
        hour = min(max(rng.gauss(14.5, 3.5), 6.0), 23.99)
    return day + timedelta(hours=hour, seconds=rng.uniform(0, 59))


def _merchant(rng: random.Random, country: str, category: tuple[str, float, str, str] | None = None) -> _Merchant:
    mcc, basket, channel, stem = category or rng.choice(CATEGORIES)
    return _Merchant(f"{stem} {country}-{rng.randint(1, 400)}", mcc, basket, channel, country)


def _account(rng: random.Random, number: int) -> _Account:
    home = rng.choice(HOME_COUNTRIES)
    merchants = [_merchant(rng, home if rng.random() < 0.9 else rng.choice(HOME_COUNTRIES))
                 for _ in range(rng.randint(6, 20))]
    gambler = rng.random() < 0.03
    if gambler:
        merchants.append(_Merchant(f"Casino {home}-{rng.randint(1, 50)}", "7995", 60.0, "online", home))
    return _Account(
        id=f"acct-{number:06d}", home=home, rate=min(rng.lognormvariate(math.log(2.0), 0.6), 12.0),
        scale=rng.lognormvariate(0.0, 0.5), merchants=merchants,
        rent=round(rng.uniform(500, 1800), 2) if rng.random() < 0.25 else None,
        invoices=rng.random() < 0.02, gambler=gambler, traveller=rng.random() < 0.08,
        saver=rng.random() < 0.04,
    )


def _poisson(rng: random.Random, mean: float) -> int:
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _legit_day(rng: random.Random, account: _Account, day: datetime, index: int, travel: str | None,
               write: _Writer) -> Iterator[dict[str, Any]]:
    # Most payments come from a known device; 5 % from a new phone.
    device = lambda: rng.betavariate(5, 3) if rng.random() < 0.05 else rng.betavariate(2, 9)  # noqa: E731
    for _ in range(_poisson(rng, account.rate)):
        if travel:
            merchant = _merchant(rng, travel)
        else:
            merchant = rng.choice(account.merchants)
        amount = merchant.basket * account.scale * rng.lognormvariate(0.0, 0.6)
        when = _daytime(rng, day)
        if merchant.mcc == "7011" and travel and rng.random() < 0.5:
            amount = rng.uniform(900, 2500)
        yield write(account, when, amount, channel=merchant.channel, country=merchant.country, merchant=merchant,
                    device_score=device(), rng=rng)
    if rng.random() < 0.03:  # an app-store session: a few small online payments within minutes
        store = _merchant(rng, account.home, ("5815", 2.0, "online", "App Store"))
        when = _daytime(rng, day)
        for k in range(rng.randint(3, 6)):
            yield write(account, when + timedelta(seconds=40 * k + rng.uniform(0, 30)),
                        rng.choice((0.99, 1.99, 2.99, 4.99)), channel="online", country=account.home, merchant=store,
                        device_score=device(), rng=rng)
    if account.rent and index % 30 == 2:
        yield write(account, day + timedelta(hours=9, minutes=rng.uniform(0, 60)), account.rent, channel="transfer",
                    country=account.home, iban=_iban(rng, account.home), device_score=device(), rng=rng)
    if account.invoices and rng.random() < 0.3:
        amount = rng.uniform(9000, 9990) if rng.random() < 0.4 else rng.uniform(1000, 20000)
        yield write(account, _daytime(rng, day), amount, channel="transfer", country=account.home,
                    iban=_iban(rng, account.home), device_score=device(), rng=rng)
    if account.saver and index % 30 == 27:  # a monthly transfer to the account's own savings
        yield write(account, _daytime(rng, day), rng.choice((2000, 5000, 8000, 9000, 9500, 9900)) * account.scale,
                    channel="transfer", country=account.home, iban=_iban(rng, account.home), device_score=device(),
                    rng=rng)
    if rng.random() < 0.0015:  # a large legitimate purchase (car, furniture, a deposit)
        yield write(account, _daytime(rng, day), rng.uniform(3000, 25000), channel="transfer", country=account.home,
                    iban=_iban(rng, account.home), device_score=device(), rng=rng)
    if account.gambler and rng.random() < 0.05:  # regular gamblers sometimes play big
        casino = next(m for m in account.merchants if m.mcc == "7995")
        yield write(account, _daytime(rng, day), rng.uniform(200, 1500), channel="online", country=account.home,
                    merchant=casino, device_score=device(), rng=rng)


def _card_testing(rng: random.Random, account: _Account, day: datetime, write: _Writer) -> Iterator[dict[str, Any]]:
    when = _daytime(rng, day)
    country = rng.choice(TAKEOVER_COUNTRIES) if rng.random() < 0.5 else account.home
    device = rng.betavariate(3, 5)
    for _ in range(rng.randint(3, 15)):
        when += timedelta(seconds=rng.uniform(5, 50))
        merchant = _merchant(rng, country, ("5999", 3.0, "online", "Webshop"))
        yield write(account, when, rng.uniform(0.5, 5.0), channel="online", country=country, merchant=merchant,
                    device_score=device, rng=rng, label=1, scenario="card_testing")
    for _ in range(rng.choice((0, 1, 1, 2))):
        when += timedelta(minutes=rng.uniform(1, 20))
        merchant = _merchant(rng, country, ("5732", 300.0, "online", "Electronics"))
        yield write(account, when, rng.uniform(150, 900), channel="online", country=country, merchant=merchant,
                    device_score=device, rng=rng, label=1, scenario="card_testing")


def _takeover(rng: random.Random, account: _Account, day: datetime, write: _Writer) -> Iterator[dict[str, Any]]:
    when = day + timedelta(hours=rng.uniform(0, 6)) if rng.random() < 0.5 else _daytime(rng, day)
    country = rng.choice([c for c in TAKEOVER_COUNTRIES if c != account.home])
    device = rng.betavariate(6, 3) if rng.random() < 0.5 else rng.betavariate(2, 8)  # half spoof the device
    for _ in range(rng.randint(1, 3)):
        when += timedelta(minutes=rng.uniform(2, 25))
        amount = min(rng.lognormvariate(math.log(4000), 0.6), 15000)
        yield write(account, when, amount, channel="transfer", country=country, iban=_iban(rng, country),
                    device_score=device, rng=rng, label=1, scenario="account_takeover")


def _structuring(rng: random.Random, account: _Account, day: datetime, write: _Writer) -> Iterator[dict[str, Any]]:
    when = _daytime(rng, day)
    for _ in range(rng.randint(2, 6)):
        channel = "atm" if rng.random() < 0.3 else "transfer"
        iban = None if channel == "atm" else _iban(rng, rng.choice(HOME_COUNTRIES))
        yield write(account, when, rng.uniform(8000, 9990), channel=channel, country=account.home, iban=iban,
                    device_score=rng.betavariate(2, 8), rng=rng, label=1, scenario="structuring")
        when += timedelta(hours=rng.uniform(2, 30))


def _mcc_anomaly(rng: random.Random, account: _Account, day: datetime, write: _Writer) -> Iterator[dict[str, Any]]:
    mcc, stem = rng.choice(HIGH_RISK)
    country = account.home if rng.random() < 0.5 else rng.choice(TRAVEL_COUNTRIES)
    merchant = _Merchant(f"{stem} {rng.randint(1, 90)}", mcc, 50.0, "online", country)
    when = _daytime(rng, day)
    usual = sum(m.basket for m in account.merchants) / len(account.merchants) * account.scale
    for _ in range(rng.randint(1, 3)):
        when += timedelta(minutes=rng.uniform(1, 90))
        yield write(account, when, usual * rng.uniform(3, 20), channel="online", country=merchant.country,
                    merchant=merchant, device_score=rng.betavariate(3, 6), rng=rng, label=1, scenario="mcc_anomaly")


FRAUD_KINDS = (_card_testing, _takeover, _structuring, _mcc_anomaly)


def simulate(config: SimulationConfig = SimulationConfig()) -> list[dict[str, Any]]:
    """All transactions of all accounts over the period, in timestamp order."""
    rng = random.Random(config.seed)
    write = _Writer()
    items: list[dict[str, Any]] = []
    for number in range(config.accounts):
        account = _account(rng, number)
        trip_start = rng.randrange(config.days) if account.traveller else -1
        trip_country = rng.choice(TRAVEL_COUNTRIES)
        for index in range(config.days):
            day = config.start + timedelta(days=index)
            travel = trip_country if trip_start <= index < trip_start + 5 else None
            items.extend(_legit_day(rng, account, day, index, travel, write))
            if index >= 3 and rng.random() < config.fraud_episodes_per_account_day:
                items.extend(rng.choice(FRAUD_KINDS)(rng, account, day, write))
    items.sort(key=lambda item: (item["timestamp"], item["id"]))
    return items


def write_jsonl(items: Iterable[dict[str, Any]], path: Path) -> Path:
    with Path(path).open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, separators=(",", ":")) + "\n")
    return Path(path)

