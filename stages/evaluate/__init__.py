"""Stage 4: downstream probes on per-frame embeddings (classification, progression, Kendall's tau, AP@K)."""
