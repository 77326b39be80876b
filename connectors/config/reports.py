"""``[reports]``: where shift reports are written, and whether the collector writes one at every shift end.

::

    [reports]
    dir = "../var/reports"      # relative to the configuration file (default: reports/ beside it)
    on_shift_end = false        # the collector writes each shift's report once it has ended (off by default)
    pdf = true                  # also the PDF (WeasyPrint); without it, the HTML page and the CSV tables
    sites = ["pod-berlin"]      # only these sites (default: every site of the fleet)
    delay_s = 120               # written this long after the shift's end (its last readings committed)

The section is optional: without it no report is written by the collector (``twin report`` takes
``--out``). Paths are resolved against the configuration file's folder.

>>> from pathlib import Path
>>> from twin.spec import FleetSpec
>>> problems = []
>>> cfg = convert_reports(ReportsModel(dir="out", sites=["nowhere"]), Path("/etc/twin/plant.toml"),
...                       FleetSpec(id="f", name="f", sites=(), templates=()), problems)
>>> str(cfg.dir), [(p.path, p.message) for p in problems]
('/etc/twin/out', [('reports.sites[0]', 'no site with this id')])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from twin.errors import Problem
from twin.spec import FleetSpec

__all__ = ["ReportsConfig", "ReportsModel", "convert_reports"]


class ReportsModel(BaseModel):
    """``[reports]`` as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    dir: str = Field(default="reports", min_length=1)
    on_shift_end: Annotated[bool, Strict()] = False
    pdf: Annotated[bool, Strict()] = True
    sites: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    delay_s: Annotated[float, Strict(), Field(ge=0, le=3600, allow_inf_nan=False)] | Annotated[
        int, Strict(), Field(ge=0, le=3600)] = 120


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportsConfig:
    """Where reports go (an absolute folder), whether the collector writes them at each shift end, and for which sites.

    ``sites`` empty: every site of the fleet.
    """

    dir: Path
    on_shift_end: bool = False
    pdf: bool = True
    sites: tuple[str, ...] = ()
    delay_s: float = 120.0


def convert_reports(model: ReportsModel | None, source: Path, fleet: FleetSpec,
                    problems: list[Problem]) -> ReportsConfig | None:
    """The ``[reports]`` section, paths resolved against ``source``'s folder; problems named ``reports.KEY``."""
    if model is None:
        return None
    base = source.parent if source.name != "<string>" else Path.cwd()
    folder = (base / model.dir).resolve() if not Path(model.dir).is_absolute() else Path(model.dir)
    if folder.exists() and not folder.is_dir():
        problems.append(Problem(path="reports.dir", message="is a file, not a folder", got=model.dir))
    known = {s.id for s in fleet.sites}
    seen: set[str] = set()
    for i, site in enumerate(model.sites):
        if site not in known:
            problems.append(Problem(path=f"reports.sites[{i}]", message="no site with this id", got=site))
        elif site in seen:
            problems.append(Problem(path=f"reports.sites[{i}]", message="listed twice", got=site))
        seen.add(site)
    return ReportsConfig(dir=folder, on_shift_end=model.on_shift_end, pdf=model.pdf, sites=tuple(model.sites),
                         delay_s=float(model.delay_s))
