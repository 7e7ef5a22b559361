"""Applying a trained embedder (or plain pooling) to every cached frame -> embeddings.h5."""
