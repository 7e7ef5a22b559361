"""The one exception type that reaches users as a single-line message."""


class VavaError(Exception):
    """Bad input or a failed step, explained in one line (the CLI prints it without traceback)."""
