"""The evaluation probes, by task name. A new probe is one module here and one entry below."""
from __future__ import annotations

from vava.stages.evaluate.probes.alignment import Alignment
from vava.stages.evaluate.probes.base import Probe
from vava.stages.evaluate.probes.classification import Classification
from vava.stages.evaluate.probes.few_shot import FewShot
from vava.stages.evaluate.probes.kendall import Kendall
from vava.stages.evaluate.probes.progression import Progress
from vava.stages.evaluate.probes.retrieval import Retrieval
from vava.stages.evaluate.probes.robustness import Robustness
from vava.stages.evaluate.probes.targeted import Targeted

Registry = dict[str, type[Probe]]

# The order is the order of `--tasks`' list, of report.json's results and of the table columns.
PROBES: Registry = {probe.name: probe for probe in (Classification, Progress, Kendall, Retrieval, Alignment, Targeted,
                                                    FewShot, Robustness)}
