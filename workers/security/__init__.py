"""Security building blocks: signed producers, Redis ACLs, encrypted model weights, a tamper-evident
audit chain and masking of personal data. Each module has one job and no dependency on the runtime."""
