"""The pipeline stages: extract, train, embed, evaluate."""
