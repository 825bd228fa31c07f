"""The console's pages, one module per area; each gives an APIRouter built on the shared :class:`Console`."""
