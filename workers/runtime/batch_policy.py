"""How a queue is consumed: a batch is sent to the pipeline when full or when the oldest item waited long
enough. Each kind's settings section extends it with its own defaults."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BatchPolicy(BaseModel):
    max_batch_size: int = Field(ge=1, le=1024)
    max_wait_seconds: float = Field(gt=0, le=60)
