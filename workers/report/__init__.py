"""``slimline report``: items, CPU, latency and cost per kind, tier, model version, language and stage; the same
work priced at a hosted LLM; accuracy where a person reviewed; accuracy per cost.

queries (workers/db/store/report.py) → figures (:mod:`workers.report.figures`, assembled by
:mod:`workers.report.build`) → renderers (:mod:`workers.report.render`: terminal, JSON, HTML with the plots of
:mod:`workers.report.plots`)."""
