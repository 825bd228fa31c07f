"""Document classes from embeddings: zero-shot from label descriptions, or a trained linear head."""
