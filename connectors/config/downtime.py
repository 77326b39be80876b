"""A site's ``[sites.downtime]`` section checked and converted into ``twin.spec.DowntimeSpec``.

The shape of each key is checked by the schema (``DowntimeModel``); here the cross-references: every
reason id once in the tree, sub-reasons under a reason of the tree, every rule naming a reason of
the tree, fault codes 0..65535, breaks that do not start and end at the same time. Without the
section a site gets ``twin.spec.DEFAULT_DOWNTIME``.
"""

from __future__ import annotations

from connectors.config.schema import DowntimeModel
from twin.errors import Problem
from twin.frozen import FrozenDict
from twin.spec import DEFAULT_DOWNTIME, DowntimeCategory, DowntimeReason, DowntimeSpec, Shift

__all__ = ["convert_downtime"]

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def convert_downtime(model: DowntimeModel | None, path: str, problems: list[Problem]) -> DowntimeSpec:
    """The site's downtime tree and rules; problems are appended with paths under ``path`` (``sites[i].downtime``).

    >>> problems: list[Problem] = []
    >>> m = DowntimeModel.model_validate({"rules": {"fault_codes": {"101": "nozzle_jam"}}})
    >>> _ = convert_downtime(m, "sites[0].downtime", problems)
    >>> print(problems[0])
    sites[0].downtime.rules.fault_codes.101: no reason with this id in the tree (got 'nozzle_jam')
    """
    if model is None:
        return DEFAULT_DOWNTIME
    reasons: list[DowntimeReason] = []
    seen: dict[str, str] = {}

    def add(rid: str, category: DowntimeCategory, parent: str, where: str) -> None:
        if rid in seen:
            problems.append(Problem(path=where, message=f"reason already in the tree at {seen[rid]}", got=rid))
            return
        seen[rid] = where
        reasons.append(DowntimeReason(id=rid, category=category, parent=parent))

    tree = model.reasons
    for key, ids, category in (("planned", tree.planned, DowntimeCategory.PLANNED),
                               ("unplanned", tree.unplanned, DowntimeCategory.UNPLANNED)):
        for j, rid in enumerate(ids):
            add(rid, category, "", f"{path}.reasons.{key}[{j}]")
    pending = dict(tree.children)
    while pending:  # a parent may itself be a child: add level by level
        ready = [p for p in pending if p in seen]
        if not ready:
            for parent in pending:
                problems.append(Problem(path=f"{path}.reasons.children.{parent}",
                                        message="no reason with this id in the tree to put sub-reasons under",
                                        got=parent))
            break
        for parent in ready:
            category = next(r.category for r in reasons if r.id == parent)
            for j, rid in enumerate(pending.pop(parent)):
                add(rid, category, parent, f"{path}.reasons.children.{parent}[{j}]")
    rules = model.rules
    for code, rid in rules.fault_codes.items():
        if not 0 <= code <= 0xFFFF:
            problems.append(Problem(path=f"{path}.rules.fault_codes.{code}", message="fault code must be 0..65535",
                                    got=code))
        if rid not in seen:
            problems.append(Problem(path=f"{path}.rules.fault_codes.{code}",
                                    message="no reason with this id in the tree", got=rid))
    for key in ("fault", "maintenance", "setup"):
        rid = getattr(rules, key)
        if rid not in seen:
            problems.append(Problem(path=f"{path}.rules.{key}", message="no reason with this id in the tree",
                                    got=rid))
    for j, b in enumerate(model.breaks):
        if b.start == b.end:
            problems.append(Problem(path=f"{path}.breaks[{j}].end",
                                    message="a break cannot start and end at the same time", got=str(b.end)))
    breaks = tuple(Shift(name=b.name, weekdays=frozenset(_WEEKDAYS[d] for d in b.days), start=b.start, end=b.end)
                   for b in model.breaks)
    return DowntimeSpec(reasons=tuple(reasons), fault_codes=FrozenDict(rules.fault_codes), fault=rules.fault,
                        maintenance=rules.maintenance, setup=rules.setup, breaks=breaks)
