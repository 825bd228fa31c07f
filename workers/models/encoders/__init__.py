"""Sentence encoders (text → L2-normalized float32 vectors) behind one interface, one module per engine.

``factory.create_encoder`` imports (and so registers) every backend; this package itself imports none,
so the export tool runs in an environment that has torch but not the runtime engines.
"""
