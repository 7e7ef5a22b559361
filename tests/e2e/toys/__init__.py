"""One toy of each extension kind, each a single module as a contributor would write it (README, Extending);
`tests/e2e/test_extensions.py` registers each with one line and runs them through the CLI."""
