"""The one signal a probe gives when its input cannot support it (reported, not raised to the user)."""


class ProbeSkipped(Exception):
    """A probe that cannot run on this input; the message says why (e.g. "needs at least 2 val videos")."""
