"""The evaluation probes, by task name. A new probe is one module here and one entry below."""
from __future__ import annotations

from stages.evaluate.probes.base import Probe
from stages.evaluate.probes.classification import Classification
from stages.evaluate.probes.few_shot import FewShot
from stages.evaluate.probes.kendall import Kendall
from stages.evaluate.probes.progression import Progress
from stages.evaluate.probes.retrieval import Retrieval
from stages.evaluate.probes.robustness import Robustness

Registry = dict[str, type[Probe]]

# The order is the order of `--tasks`' list, of report.json's results and of the table columns.
PROBES: Registry = {probe.name: probe for probe in (Classification, Progress, Kendall, Retrieval, FewShot, Robustness)}
