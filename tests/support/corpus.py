"""Synthetic but realistic back-office documents: names, organisations, places, dates, amounts."""

from __future__ import annotations

import random

PEOPLE = ["Alice Martin", "John Carter", "Maria Gonzalez", "Peter Novak", "Sarah O'Connor", "Robert Kim",
          "Priya Shah", "Hans Weber", "Emily Clarke", "David Cohen", "Laura Rossi", "Ahmed Hassan"]
ORGS = ["Acme Corporation", "Northwind Traders", "Contoso Bank", "Globex", "Barclays", "Deutsche Bank",
        "Oakridge Holdings", "Initech", "Stark Industries", "Wayne Enterprises", "HSBC", "Siemens"]
PLACES = ["London", "Paris", "Berlin", "Madrid", "New York", "Dublin", "Manchester", "Chicago", "Toronto"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
TEMPLATES = [
    "Invoice {n} from {org} to {org2}, dated {date}. Amount due: ${amount}, payable by {date2}.",
    "{person} of {org} met {person2} in {place} on {date} to discuss a loan of ${amount}.",
    "Customer {person} reported on {date} that {org} charged her card twice for ${amount} in {place}.",
    "Internal audit: {person} approved {k} transfers above ${amount} to {org} between {date} and {date2}.",
    "The board of {org} expects the acquisition of {org2} to close by {date} for about ${amount}.",
    "Patient {person}, seen in {place} on {date}, reports headaches and fatigue; referred to Dr. {person2}.",
]


def synthetic_documents(count: int, seed: int = 0, prefix: str = "doc") -> list[dict[str, str]]:
    rng = random.Random(seed)

    def date() -> str:
        return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2019, 2025)}"

    documents = []
    for index in range(count):
        text = rng.choice(TEMPLATES).format(
            n=f"INV-{rng.randint(1000, 9999)}", org=rng.choice(ORGS), org2=rng.choice(ORGS),
            person=rng.choice(PEOPLE), person2=rng.choice(PEOPLE), place=rng.choice(PLACES),
            date=date(), date2=date(), amount=f"{rng.randint(100, 99999):,}", k=rng.randint(2, 40),
        )
        documents.append({"id": f"{prefix}-{index:06d}", "text": text})
    return documents
