"""A seeded simulator of card and account transactions with injected fraud, for training the default
risk model, testing rules and benchmarking detection. Same seed, same output (Python's ``random``,
whose sequences are stable across versions).

**What makes it honest.** Fraud differs from legitimate traffic only by behaviour over time, as real
fraud does: bursts (velocity), merchants, payees, categories and countries new to the account
(novelty), and sequences (small probes before large payments). Every single transaction of a fraud
episode is drawn by the same function, from the same distribution, as some legitimate behaviour:
fraud and legitimate rows share the amount generators, the merchant name space, the countries, the
IBAN countries, the hours of the day and the metadata. No column is drawn from the label; the label
is a tag written after the row is drawn. So every value a fraud pattern uses (a foreign IBAN, a crypto
exchange, a gift card shop, a money transfer service, a casino, a cash withdrawal of 9,500, a failed
strong authentication, a night-time transfer) also occurs in legitimate traffic, at a realistic rate
and usually far more often. ``tests/test_transactions_simulator.py`` checks this.

Accounts. Each account has a home country, a daily activity rate (log-normal, median ~2 payments a
day), a spending scale (log-normal), 6-20 regular merchants (mostly in its home country) and an app
store. Some accounts have habits that look like fraud on a single row: about 1 in 4 pays rent by a
night-time standing order; savers move money to their savings account monthly, sometimes just under
10,000; remitters send money to family abroad (a foreign IBAN, or a money transfer service, MCC 4829);
crypto investors (6051) and gamblers (7995) pay those categories regularly; cash-intensive small
businesses withdraw and transfer 1,000-9,999 several times a week; travellers pay in other countries
at merchants they never used. Anyone, now and then: a new merchant, a small payment to a friend, an
app-store session of several small online payments within minutes, an online shopping session at
several webshops, a gift card (6540), a first crypto purchase, a large one-off transfer to a new payee
(sometimes abroad, sometimes two in a row), a large cash withdrawal.

Metadata: ``device_score`` (the bank's device risk, 0-1), ``sca_passed`` on online payments that were
challenged (strong customer authentication; about 8 % of challenges fail), and ``pca_1``, an anonymised
component. The simulator does not know how a bank's own signals relate to fraud, so it gives them no
relation at all: they are drawn the same way for every row, and what they are worth has to be learnt
from the bank's labelled history.

Fraud (label 1), injected as episodes on about 0.3 % of account-days (about 0.5 % of payments):
- card testing: several small online payments (the app-store amounts) within minutes, each at a
  webshop or digital merchant the account never used, sometimes followed by one or two online purchases;
- stolen card: a few ordinary payments (everyday categories, everyday amounts) within hours at merchants
  new to the account, often in a country it never paid in;
- account takeover (or a scam the customer is talked into): sometimes a small probe transfer, then 1-4
  large transfers to one new payee (the same amounts and IBAN countries as legitimate one-off transfers)
  within minutes to an hour, often from a new country;
- structuring (a mule cashing out): 2-6 transfers or cash withdrawals of 9,000-9,999 (the band a
  reporting-threshold rule watches) over one to a few days, from an account that does not move such sums;
- high-risk category (``mcc_anomaly``): 1-4 payments in crypto, gift cards, money transfer or gambling,
  a category the account never used, at the amounts legitimate users of that category pay.

Difficulty (0 = easy to 1 = hard, default 0.5) sets how far fraud behaviour departs from the account's
and how often legitimate customers behave alike: at 1, card tests are short and slow and sometimes
repeat a merchant, takeovers come mostly from home with one or two transfers, structuring spreads over
days, stolen cards stay at home more often; legitimate multi-merchant bursts, shopping sessions, one-off
transfers and trips are more frequent. It never changes what a single row looks like.

Output: dicts in the ``Transaction`` contract plus ``label`` (0/1) and ``scenario`` (fraud kind or
"legit"), sorted by timestamp (JSON lines with :func:`write_jsonl`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HOME_COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "BE", "PT", "AT", "IE", "FI")
# Countries outside the home region: trips, family abroad, foreign payees, and fraudsters, all alike.
ABROAD = ("GB", "US", "CH", "GR", "HR", "MA", "TH", "TR", "JP", "MX", "NG", "RO", "UA", "BR", "VN", "PH", "PL",
          "IN", "CN", "AE")  # fmt: skip
FOREIGN_PAYEE_SHARE = 0.3  # one-off payees (legitimate or not) with an IBAN outside the home country

# MCC, typical basket, channel, name stem
EVERYDAY = (
    ("5411", 45.0, "card_present", "Grocery"), ("5812", 30.0, "card_present", "Restaurant"),
    ("5814", 9.0, "card_present", "Fast Food"), ("5541", 55.0, "card_present", "Fuel"),
    ("5912", 18.0, "card_present", "Pharmacy"), ("5311", 70.0, "card_present", "Department Store"),
    ("4111", 4.0, "card_present", "Transit"), ("5999", 35.0, "online", "Webshop"),
    ("5732", 180.0, "online", "Electronics"), ("4121", 16.0, "online", "Rides"),
    ("5815", 6.0, "online", "Digital Media"), ("4899", 25.0, "online", "Streaming"),
    ("6011", 120.0, "atm", "ATM"), ("7011", 160.0, "card_present", "Hotel"),
)  # fmt: skip
ONLINE_SHOPS = tuple(c for c in EVERYDAY if c[0] in ("5999", "5732", "4899"))
# Where small online payments go (legitimate ones and card tests alike), with their weights.
MICRO_MERCHANTS = (("5815", 2.0, "online", "App Store"), ("5815", 2.0, "online", "Digital Media"),
                   ("4121", 3.0, "online", "Parking"), ("5999", 3.0, "online", "Webshop"),
                   ("4899", 4.0, "online", "Streaming"))  # fmt: skip
MICRO_WEIGHTS = (0.35, 0.25, 0.15, 0.15, 0.10)
MICRO_AMOUNTS = (0.5, 0.99, 1.0, 1.49, 1.99, 2.49, 2.99, 3.49, 3.99, 4.49, 4.99)
HIGH_RISK = (("6051", 300.0, "online", "Crypto Exchange"), ("6540", 100.0, "online", "Gift Card Shop"),
             ("4829", 250.0, "online", "Money Transfer"), ("7995", 60.0, "online", "Casino"))  # fmt: skip
HIGH_RISK_WEIGHTS = (0.25, 0.45, 0.15, 0.15)  # one-off purchases in these categories, legitimate or not
NIGHT_SHARE = 0.03
EXPLORE_SHARE = 0.06  # payments at a merchant the account never used, at home


@dataclass(frozen=True)
class SimulationConfig:
    accounts: int = 2000
    days: int = 60
    start: datetime = datetime(2024, 3, 1, tzinfo=UTC)
    seed: int = 7
    fraud_episodes_per_account_day: float = 0.003
    difficulty: float = 0.5  # 0 easy ... 1 hard: see the module docstring

    def __post_init__(self) -> None:
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty must be between 0 and 1, not {self.difficulty}")


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
    app_store: _Merchant
    friends: list[str]
    rent: float | None = None
    landlord: str = ""
    bill: float | None = None
    creditor: str = ""
    savings: str | None = None
    family: str | None = None  # a foreign IBAN
    remittance_service: _Merchant | None = None
    cash_business: bool = False
    suppliers: list[str] = field(default_factory=list)
    habits: list[_Merchant] = field(default_factory=list)  # regular high-risk merchants (crypto, casino)
    trips: list[tuple[int, int, str]] = field(default_factory=list)  # (first day, last day, country)


class _Behaviour:
    """Knobs that difficulty moves (``mix(easy, hard)``); nothing here changes how one row is drawn."""

    def __init__(self, difficulty: float) -> None:
        self.d = difficulty

    def mix(self, easy: float, hard: float) -> float:
        return easy + (hard - easy) * self.d

    def count(self, rng: random.Random, easy: tuple[int, int], hard: tuple[int, int]) -> int:
        low, high = round(self.mix(*(easy[0], hard[0]))), round(self.mix(*(easy[1], hard[1])))
        return rng.randint(low, max(low, high))


class _Writer:
    """Builds contract dicts; ids are sequential so the same seed gives the same ids. The label is a tag
    added after the row is drawn: no value of the row depends on it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0

    def __call__(self, account: _Account, when: datetime, amount: float, *, channel: str, country: str,
                 merchant: _Merchant | None = None, iban: str | None = None, label: int = 0,
                 scenario: str = "legit") -> dict[str, Any]:
        self.count += 1
        item: dict[str, Any] = {
            "id": f"tx-{self.count:09d}",
            "account_id": account.id,
            "amount": f"{max(amount, 0.01):.2f}",
            "currency": "EUR",
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "country": country,
            "channel": channel,
            "metadata": self._metadata(channel, amount),
        }
        if merchant is not None:
            item["merchant"] = {"name": merchant.name, "category_code": merchant.mcc}
        if iban is not None:
            item["counterparty_iban"] = iban
        item["label"], item["scenario"] = label, scenario
        return item

    def _metadata(self, channel: str, amount: float) -> dict[str, Any]:
        rng = self.rng
        metadata: dict[str, Any] = {"pca_1": round(rng.gauss(0.0, 1.0), 3)}
        if channel != "atm" and rng.random() < 0.8:  # the bank scores the device of most payments
            new_device = rng.random() < 0.05
            metadata["device_score"] = round(rng.betavariate(5, 3) if new_device else rng.betavariate(2, 9), 3)
        # Strong customer authentication: most online payments above 30 are challenged, a few below
        # (exemptions); about 8 % of challenges fail (mistyped codes, timeouts).
        if channel == "online" and rng.random() < (0.9 if amount > 30 else 0.25):
            metadata["sca_passed"] = rng.random() >= 0.08
        return metadata


# -- what a single row looks like: shared by legitimate behaviour and fraud -------------------------------


def _iban(rng: random.Random, country: str) -> str:
    """Format-valid (the check digits are random, not computed)."""
    return f"{country}{rng.randint(10, 99)}" + "".join(str(rng.randint(0, 9)) for _ in range(18))


def _payee_iban(rng: random.Random, home: str) -> str:
    """A one-off payee's IBAN: at home, in another home-region country, or abroad."""
    roll = rng.random()
    if roll < 1 - FOREIGN_PAYEE_SHARE:
        return _iban(rng, home)
    return _iban(rng, rng.choice(HOME_COUNTRIES) if roll < 1 - FOREIGN_PAYEE_SHARE / 2 else rng.choice(ABROAD))


def _daytime(rng: random.Random, day: datetime) -> datetime:
    if rng.random() < NIGHT_SHARE:
        hour = rng.uniform(0, 6)
    else:
        hour = min(max(rng.gauss(14.5, 3.5), 6.0), 23.99)
    return day + timedelta(hours=hour, seconds=rng.uniform(0, 59))


def _standing_order_time(rng: random.Random, day: datetime) -> datetime:
    """Banks execute standing orders in their night batch."""
    return day + timedelta(hours=rng.uniform(0.5, 4.5))


def _merchant(rng: random.Random, country: str, category: tuple[str, float, str, str]) -> _Merchant:
    mcc, basket, channel, stem = category
    return _Merchant(f"{stem} {country}-{rng.randint(1, 400)}", mcc, basket, channel, country)


def _online_country(rng: random.Random, home: str) -> str:
    """Webshops: mostly at home, some elsewhere in the region, some further away."""
    roll = rng.random()
    return home if roll < 0.65 else rng.choice(HOME_COUNTRIES) if roll < 0.85 else rng.choice(ABROAD)


def _micro_merchant(rng: random.Random, home: str) -> _Merchant:
    return _merchant(rng, _online_country(rng, home), rng.choices(MICRO_MERCHANTS, MICRO_WEIGHTS)[0])


def _population_scale(rng: random.Random) -> float:
    """A spending scale drawn as accounts' scales are (what an unknown customer spends)."""
    return rng.lognormvariate(0.0, 0.5)


def _basket_amount(rng: random.Random, merchant: _Merchant, scale: float) -> float:
    return merchant.basket * scale * rng.lognormvariate(0.0, 0.6)


def _micro_amount(rng: random.Random) -> float:
    return rng.choice(MICRO_AMOUNTS)


def _large_transfer_amount(rng: random.Random) -> float:
    return min(rng.lognormvariate(math.log(3500), 0.7), 25000.0)


def _small_transfer_amount(rng: random.Random) -> float:
    return rng.uniform(5, 60) if rng.random() < 0.6 else rng.uniform(60, 500)


def _near_threshold_amount(rng: random.Random) -> float:
    return rng.uniform(9000, 9999)


def _high_risk_amount(rng: random.Random, merchant: _Merchant, scale: float) -> float:
    if merchant.mcc == "6540":  # gift cards come in denominations
        return rng.choice((25, 50, 50, 100, 100, 150, 200, 250, 500))
    return merchant.basket * scale * rng.lognormvariate(0.0, 0.9)


# -- accounts and their legitimate days ---------------------------------------------------------------------


def _account(rng: random.Random, number: int, days: int, behaviour: _Behaviour) -> _Account:
    home = rng.choice(HOME_COUNTRIES)
    merchants = [_merchant(rng, home if rng.random() < 0.9 else rng.choice(HOME_COUNTRIES), rng.choice(EVERYDAY))
                 for _ in range(rng.randint(6, 20))]
    account = _Account(
        id=f"acct-{number:06d}", home=home, rate=min(rng.lognormvariate(math.log(2.0), 0.6), 12.0),
        scale=rng.lognormvariate(0.0, 0.5), merchants=merchants,
        app_store=_micro_merchant(rng, home),
        friends=[_iban(rng, home if rng.random() < 0.9 else rng.choice(HOME_COUNTRIES + ABROAD))
                 for _ in range(rng.randint(1, 6))],
    )
    if rng.random() < 0.25:
        account.rent, account.landlord = round(rng.uniform(500, 1800), 2), _iban(rng, home)
    if rng.random() < 0.4:  # a loan or credit card repayment, a tax instalment
        account.bill, account.creditor = round(_large_transfer_amount(rng) / 3 * account.scale, 2), \
            _iban(rng, home if rng.random() < 0.8 else rng.choice(HOME_COUNTRIES))
    if rng.random() < 0.06:
        account.savings = _iban(rng, home)
    if rng.random() < 0.08:
        account.family = _iban(rng, rng.choice(ABROAD))
        if rng.random() < 0.4:
            account.remittance_service = _merchant(rng, home, HIGH_RISK[2])
    if rng.random() < 0.05:
        account.cash_business = True
        account.suppliers = [_payee_iban(rng, home) for _ in range(rng.randint(2, 6))]
    if rng.random() < 0.06:
        account.habits.append(_merchant(rng, _online_country(rng, home), HIGH_RISK[0]))
    if rng.random() < 0.03:
        account.habits.append(_merchant(rng, home, HIGH_RISK[3]))
    if rng.random() < behaviour.mix(0.10, 0.18):
        for _ in range(rng.randint(1, 2)):
            first = rng.randrange(days)
            account.trips.append((first, first + rng.randint(2, 7), rng.choice(ABROAD)))
    return account


def _legit_day(rng: random.Random, account: _Account, day: datetime, index: int, behaviour: _Behaviour,
               write: _Writer) -> Iterator[dict[str, Any]]:
    home = account.home
    travel = next((country for first, last, country in account.trips if first <= index <= last), None)
    country_now = travel or home
    for _ in range(_poisson(rng, account.rate)):
        if travel:
            merchant = _merchant(rng, travel, rng.choice(EVERYDAY))
        elif rng.random() < EXPLORE_SHARE:
            merchant = _merchant(rng, home, rng.choice(EVERYDAY))
        else:
            merchant = rng.choice(account.merchants)
        amount = _basket_amount(rng, merchant, account.scale)
        if merchant.mcc == "7011" and travel and rng.random() < 0.5:
            amount = rng.uniform(900, 2500)
        yield write(account, _daytime(rng, day), amount, channel=merchant.channel, country=merchant.country,
                    merchant=merchant)
    if rng.random() < 0.25:  # a single small online payment (an app, a parking session)
        merchant = account.app_store if rng.random() < 0.5 else _micro_merchant(rng, home)
        yield write(account, _daytime(rng, day), _micro_amount(rng), channel="online", country=merchant.country,
                    merchant=merchant)
    if rng.random() < 0.06:  # an app-store session: a few small online payments within minutes, one merchant
        when = _daytime(rng, day)
        for _ in range(rng.randint(2, 8)):
            when += timedelta(seconds=rng.uniform(10, 120))
            yield write(account, when, _micro_amount(rng), channel="online", country=account.app_store.country,
                        merchant=account.app_store)
    if rng.random() < behaviour.mix(0.0005, 0.006):  # small online payments at several merchants within minutes
        yield from _micro_burst(rng, account, _daytime(rng, day), behaviour, write, count=rng.randint(3, 8))
    if rng.random() < behaviour.mix(0.01, 0.02):  # an online shopping session at several webshops
        when = _daytime(rng, day)
        for _ in range(rng.randint(2, 5)):
            when += timedelta(minutes=rng.uniform(1, 12))
            merchant = _merchant(rng, _online_country(rng, home), rng.choice(ONLINE_SHOPS))
            yield write(account, when, _basket_amount(rng, merchant, account.scale), channel="online",
                        country=merchant.country, merchant=merchant)
    if rng.random() < 0.12:  # a small transfer to a friend (now and then a new one)
        friend = rng.choice(account.friends) if rng.random() < 0.8 else _payee_iban(rng, home)
        yield write(account, _daytime(rng, day), _small_transfer_amount(rng), channel="transfer",
                    country=country_now, iban=friend)
    if account.rent and index % 30 == 2:
        yield write(account, _standing_order_time(rng, day), account.rent, channel="transfer", country=home,
                    iban=account.landlord)
    if account.bill and index % 30 == 6:
        yield write(account, _standing_order_time(rng, day), account.bill, channel="transfer", country=home,
                    iban=account.creditor)
    if account.savings and index % 30 == 27:
        amount = _near_threshold_amount(rng) if rng.random() < 0.3 else rng.choice((500, 1000, 2000, 5000, 8000)) * \
            account.scale
        yield write(account, _standing_order_time(rng, day), amount, channel="transfer", country=home,
                    iban=account.savings)
    if account.family and index % 30 == 14:
        amount = rng.uniform(100, 2500) * account.scale
        if account.remittance_service:
            yield write(account, _daytime(rng, day), amount, channel="online", country=home,
                        merchant=account.remittance_service)
        else:
            yield write(account, _daytime(rng, day), amount, channel="transfer", country=country_now,
                        iban=account.family)
    if account.cash_business and rng.random() < 0.4:
        amount = _near_threshold_amount(rng) if rng.random() < 0.4 else rng.uniform(1000, 9000)
        if rng.random() < 0.4:
            yield write(account, _daytime(rng, day), amount, channel="atm", country=home)
        else:
            payee = rng.choice(account.suppliers) if rng.random() < 0.7 else _payee_iban(rng, home)
            yield write(account, _daytime(rng, day), amount, channel="transfer", country=home, iban=payee)
    if rng.random() < behaviour.mix(0.006, 0.012):  # a large one-off transfer (a car, a deposit, a holiday home)
        yield from _large_transfers(rng, account, _daytime(rng, day), country_now, write,
                                    count=1 + (rng.random() < 0.25))
    if rng.random() < 0.001:  # a large cash withdrawal
        amount = _near_threshold_amount(rng) if rng.random() < 0.3 else rng.uniform(1000, 9000)
        yield write(account, _daytime(rng, day), amount, channel="atm", country=country_now)
    for habit in account.habits:  # crypto investors, gamblers
        if rng.random() < (0.1 if habit.mcc == "6051" else 0.25):
            yield write(account, _daytime(rng, day), _high_risk_amount(rng, habit, account.scale), channel="online",
                        country=habit.country, merchant=habit)
    if rng.random() < 0.015:  # a gift card, a first crypto purchase, a casino night, a money transfer
        merchant = _merchant(rng, _online_country(rng, home), rng.choices(HIGH_RISK, HIGH_RISK_WEIGHTS)[0])
        yield write(account, _daytime(rng, day), _high_risk_amount(rng, merchant, account.scale), channel="online",
                    country=merchant.country, merchant=merchant)


def _micro_burst(rng: random.Random, account: _Account, when: datetime, behaviour: _Behaviour, write: _Writer, *,
                 count: int, label: int = 0, scenario: str = "legit") -> Iterator[dict[str, Any]]:
    """Small online payments within minutes at several merchants (a legitimate flurry, or card testing)."""
    merchant = None
    for _ in range(count):
        when += timedelta(seconds=rng.uniform(behaviour.mix(5, 20), behaviour.mix(45, 180)))
        if merchant is None or rng.random() < behaviour.mix(1.0, 0.5):
            merchant = _micro_merchant(rng, account.home)
        yield write(account, when, _micro_amount(rng), channel="online", country=merchant.country, merchant=merchant,
                    label=label, scenario=scenario)


def _large_transfers(rng: random.Random, account: _Account, when: datetime, country: str, write: _Writer, *,
                     count: int, payee: str | None = None, gap_minutes: float = 40, label: int = 0,
                     scenario: str = "legit") -> Iterator[dict[str, Any]]:
    """Large transfers to one new payee (a deposit and the balance; or a takeover draining the account)."""
    payee = payee or _payee_iban(rng, account.home)
    for _ in range(count):
        yield write(account, when, _large_transfer_amount(rng), channel="transfer", country=country, iban=payee,
                    label=label, scenario=scenario)
        when += timedelta(minutes=rng.uniform(2, gap_minutes))


def _poisson(rng: random.Random, mean: float) -> int:
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


# -- fraud: behaviour over time, rows drawn as legitimate rows are ----------------------------------------------

Episode = Callable[[random.Random, _Account, datetime, _Behaviour, _Writer], Iterator[dict[str, Any]]]


def _new_country(rng: random.Random, account: _Account) -> str:
    visited = {country for _, _, country in account.trips}
    return rng.choice([country for country in ABROAD if country not in visited])


def _card_testing(rng: random.Random, account: _Account, day: datetime, behaviour: _Behaviour,
                  write: _Writer) -> Iterator[dict[str, Any]]:
    when = _daytime(rng, day)
    tests = list(_micro_burst(rng, account, when, behaviour, write, count=behaviour.count(rng, (6, 20), (3, 8)),
                              label=1, scenario="card_testing"))
    yield from tests
    when = datetime.fromisoformat(tests[-1]["timestamp"])
    for _ in range(rng.choice((0, 1, 1, 2))):
        when += timedelta(minutes=rng.uniform(1, 30))
        merchant = _merchant(rng, _online_country(rng, account.home), rng.choice(ONLINE_SHOPS))
        yield write(account, when, _basket_amount(rng, merchant, _population_scale(rng)), channel="online",
                    country=merchant.country, merchant=merchant, label=1, scenario="card_testing")


def _stolen_card(rng: random.Random, account: _Account, day: datetime, behaviour: _Behaviour,
                 write: _Writer) -> Iterator[dict[str, Any]]:
    country = _new_country(rng, account) if rng.random() < behaviour.mix(0.8, 0.35) else account.home
    scale, when = _population_scale(rng), _daytime(rng, day)
    for _ in range(behaviour.count(rng, (4, 9), (2, 5))):
        merchant = _merchant(rng, country, rng.choice(EVERYDAY))
        yield write(account, when, _basket_amount(rng, merchant, scale), channel=merchant.channel, country=country,
                    merchant=merchant, label=1, scenario="stolen_card")
        when += timedelta(minutes=rng.uniform(3, behaviour.mix(40, 150)))


def _takeover(rng: random.Random, account: _Account, day: datetime, behaviour: _Behaviour,
              write: _Writer) -> Iterator[dict[str, Any]]:
    country = _new_country(rng, account) if rng.random() < behaviour.mix(0.45, 0.1) else account.home
    when, payee = _daytime(rng, day), _payee_iban(rng, account.home)
    if rng.random() < behaviour.mix(0.6, 0.25):  # a small probe to the payee first (as to a friend)
        yield write(account, when, _small_transfer_amount(rng), channel="transfer", country=country, iban=payee,
                    label=1, scenario="account_takeover")
        when += timedelta(minutes=rng.uniform(1, 20))
    yield from _large_transfers(rng, account, when, country, write, count=behaviour.count(rng, (1, 4), (1, 2)),
                                payee=payee, gap_minutes=behaviour.mix(15, 60), label=1, scenario="account_takeover")


def _structuring(rng: random.Random, account: _Account, day: datetime, behaviour: _Behaviour,
                 write: _Writer) -> Iterator[dict[str, Any]]:
    when = _daytime(rng, day)
    for _ in range(behaviour.count(rng, (3, 6), (2, 3))):
        if rng.random() < 0.4:
            yield write(account, when, _near_threshold_amount(rng), channel="atm", country=account.home,
                        label=1, scenario="structuring")
        else:
            yield write(account, when, _near_threshold_amount(rng), channel="transfer", country=account.home,
                        iban=_payee_iban(rng, account.home), label=1, scenario="structuring")
        when += timedelta(hours=rng.uniform(behaviour.mix(1, 6), behaviour.mix(10, 36)))


def _mcc_anomaly(rng: random.Random, account: _Account, day: datetime, behaviour: _Behaviour,
                 write: _Writer) -> Iterator[dict[str, Any]]:
    used = {habit.mcc for habit in account.habits} | ({"4829"} if account.remittance_service else set())
    unused = [(category, weight) for category, weight in zip(HIGH_RISK, HIGH_RISK_WEIGHTS, strict=True)
              if category[0] not in used]
    merchant = _merchant(rng, _online_country(rng, account.home), rng.choices(*zip(*unused, strict=True))[0])
    scale, when = _population_scale(rng), _daytime(rng, day)
    for _ in range(behaviour.count(rng, (2, 4), (1, 2))):
        yield write(account, when, _high_risk_amount(rng, merchant, scale), channel="online",
                    country=merchant.country, merchant=merchant, label=1, scenario="mcc_anomaly")
        when += timedelta(minutes=rng.uniform(1, behaviour.mix(20, 120)))


FRAUD_KINDS: tuple[tuple[Episode, float], ...] = (
    (_card_testing, 0.25), (_stolen_card, 0.25), (_takeover, 0.2), (_mcc_anomaly, 0.22), (_structuring, 0.08),
)


def simulate(config: SimulationConfig = SimulationConfig()) -> list[dict[str, Any]]:
    """All transactions of all accounts over the period, in timestamp order."""
    rng = random.Random(config.seed)
    behaviour = _Behaviour(config.difficulty)
    write = _Writer(rng)
    kinds, weights = zip(*FRAUD_KINDS, strict=True)
    items: list[dict[str, Any]] = []
    for number in range(config.accounts):
        account = _account(rng, number, config.days, behaviour)
        for index in range(config.days):
            day = config.start + timedelta(days=index)
            items.extend(_legit_day(rng, account, day, index, behaviour, write))
            if rng.random() < config.fraud_episodes_per_account_day:
                items.extend(rng.choices(kinds, weights)[0](rng, account, day, behaviour, write))
    items.sort(key=lambda item: (item["timestamp"], item["id"]))
    return items


def write_jsonl(items: Iterable[dict[str, Any]], path: Path) -> Path:
    with Path(path).open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, separators=(",", ":")) + "\n")
    return Path(path)
