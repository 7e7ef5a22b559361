"""Stage 2: train a frame embedder on cached backbone features."""
