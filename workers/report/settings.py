"""The report section of the settings: ``SLIMLINE_REPORT__<FIELD>``, e.g. ``SLIMLINE_REPORT__CORE_HOUR_PRICE=0.05``.

Prices are what ``slimline report`` multiplies measured work by; set your own. The defaults are public list
prices (USD) at the time of writing:

- ``core_hour_price`` 0.045: one vCPU for an hour on demand, AWS EC2 ``c7i.large`` in us-east-1 ($0.08925 an
  hour for 2 vCPUs). A pool process's CPU seconds are priced; Redis, the database and the worker's main process
  are not in them.
- ``llm_price_per_1k_tokens`` 0.00015 and ``llm_output_price_per_1k_tokens`` 0.0006: a small hosted model, OpenAI
  ``gpt-4o-mini`` ($0.15 per million input tokens, $0.60 per million output tokens).

Tokens a hosted model would be sent and would write, per item (no tokenizer of the hosted model is available
offline, so tokens are estimated from characters):

- input: the item as JSON (its characters are counted by the worker, ``batch_stats.input_chars``) ÷
  ``chars_per_token`` (4: the usual rule of thumb for English with GPT tokenizers; German, French, Spanish and
  Italian take more tokens per character, so this understates the hosted model's cost), plus
  ``llm_prompt_tokens`` of instructions per item (the task, the labels and their descriptions, entity types);
- output: ``llm_output_tokens`` per item, a typical answer in JSON: for documents a class, about ten entities
  with their values and a three-sentence summary; for transactions a decision, a score and reason codes; for
  products one description of about 120 words.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReportSettings(BaseModel):
    currency: str = "USD"
    core_hour_price: float = Field(default=0.045, ge=0)
    llm_price_per_1k_tokens: float = Field(default=0.00015, ge=0)  # input tokens
    llm_output_price_per_1k_tokens: float = Field(default=0.0006, ge=0)
    chars_per_token: float = Field(default=4.0, gt=0)
    llm_prompt_tokens: dict[str, int] = {"documents": 300, "transactions": 150, "products": 120}
    llm_output_tokens: dict[str, int] = {"documents": 250, "transactions": 40, "products": 180}
