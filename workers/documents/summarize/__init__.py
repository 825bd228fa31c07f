"""Document summaries behind one interface: extractive today (sentences chosen from the source),
abstractive later (a generator registered as another ``summarizer.*`` with the same call)."""
