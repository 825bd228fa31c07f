"""Transactions: real-time flagging. Per-account features in Redis (features.py + account_features.lua),
rules from a file (rules.py, data/rules.yaml), a LightGBM risk model scored in ONNX Runtime (risk.py),
combined into one decision per transaction (pipeline.py); training (train.py), backtests (backtest.py),
a simulator (simulator.py) and commands (cli.py)."""
