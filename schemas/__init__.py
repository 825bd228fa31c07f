"""Slimline's message contracts: what producers send and what Slimline stores."""

from schemas.messages import INPUT_MODELS, Document, Kind, Product, Transaction
from schemas.outcomes import DocumentResult, Entity, ItemError

__all__ = [
    "INPUT_MODELS",
    "Document",
    "DocumentResult",
    "Entity",
    "ItemError",
    "Kind",
    "Product",
    "Transaction",
]
