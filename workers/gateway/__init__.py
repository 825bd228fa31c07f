"""The HTTP gateway (`slimline serve`): ingest, synchronous decisions, urgent documents and results over HTTP,
behind API keys that map to producers (workers/gateway/app.py)."""
