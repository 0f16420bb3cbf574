"""The only networkx importer: the unit DAG, its checks (cycles, tiers), selection and exports.

networkx (80 ms to import) loads only when a graph is built: checking a repo and exporting
it (`refarch graph`) need none.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from refarch.errors import ConfigError, DependencyCycle
from refarch.models import Repo, Unit

if TYPE_CHECKING:
    import networkx as nx

GRAPH_SCHEMA_VERSION = 1  # of `refarch graph --format json`: schemas/graph.schema.json


def build_graph(units: Mapping[str, Unit]) -> nx.DiGraph[str]:
    """Edges run dependency -> dependent, so a topological order is an apply order."""
    import networkx as nx  # noqa: PLC0415 - see the module's docstring

    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(units)
    for unit in units.values():
        graph.add_edges_from((dep, unit.path) for dep in unit.dependencies)
    return graph


def check(repo: Repo, graph: nx.DiGraph[str] | None = None) -> nx.DiGraph[str]:
    """Raise ConfigError for a dependency cycle or a dependency on a later account tier."""
    validate(repo)
    return build_graph(repo.units) if graph is None else graph


def validate(repo: Repo) -> None:
    """check() without building a networkx graph: ConfigError for a dependency cycle (the
    whole cycle, found with networkx only then) or a dependency on a later account tier."""
    dependents = _dependents(repo.units)
    if _has_cycle(repo.units, dependents):
        import networkx as nx  # noqa: PLC0415 - see the module's docstring

        # find_cycle walks dependency -> dependent; print it as "depends on" arrows.
        nodes = [edge[0] for edge in nx.find_cycle(build_graph(repo.units))]
        nodes.reverse()
        start = nodes.index(min(nodes))
        raise DependencyCycle(nodes[start:] + nodes[:start])
    for dep, children in dependents.items():  # the order of the graph's edges
        for child in children:
            a, b = repo.units[dep], repo.units[child]
            if a.tier <= b.tier:
                continue
            raise ConfigError(
                f"{b.path} (account {b.account}, tier {b.tier}) depends on {a.path} "
                f"(account {a.account}, tier {a.tier}), which deploys in a later tier",
                path=f"{b.path}/terragrunt.hcl",
                hint="move the dependency's account to an earlier tier in refarch.toml, "
                "or remove the dependency",
            )


def _dependents(units: Mapping[str, Unit]) -> dict[str, list[str]]:
    """Each unit's direct dependents, in the order build_graph adds the edges."""
    dependents: dict[str, list[str]] = {path: [] for path in units}
    for path, unit in units.items():
        for dep in dict.fromkeys(unit.dependencies):
            dependents.setdefault(dep, []).append(path)
    return dependents


def _has_cycle(units: Mapping[str, Unit], dependents: Mapping[str, list[str]]) -> bool:
    """Kahn's algorithm: a cycle leaves units that never become ready."""
    waiting = {path: sum(1 for dep in set(unit.dependencies) if dep in units) for path, unit in units.items()}
    ready = [path for path, count in waiting.items() if count == 0]
    done = 0
    while ready:
        done += 1
        for child in dependents.get(ready.pop(), ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return done < len(units)


def matches(path: str, patterns: Iterable[str]) -> bool:
    """Glob match over unit paths; a plain folder also matches everything below it."""
    for raw in patterns:
        pattern = raw.strip("/").removeprefix("./")
        if fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/") or path == pattern:
            return True
    return False


def ancestors(graph: nx.DiGraph[str], nodes: Iterable[str]) -> set[str]:
    """Everything the nodes depend on, transitively."""
    import networkx as nx  # noqa: PLC0415 - see the module's docstring

    found: set[str] = set()
    for node in nodes:
        found |= nx.ancestors(graph, node)
    return found


def tier_generations(graph: nx.DiGraph[str], tiers: Sequence[Sequence[str]]) -> list[list[str]]:
    """Groups that may run in parallel: tier by tier, dependency generations inside a tier."""
    import networkx as nx  # noqa: PLC0415 - see the module's docstring

    groups: list[list[str]] = []
    for tier in tiers:
        sub = graph.subgraph(tier)
        groups.extend(sorted(generation) for generation in nx.topological_generations(sub))
    return groups


def without_external(repo: Repo) -> Repo:
    """The repo without its external units (dependencies outside the root) and edges to them."""
    keep = {p: u for p, u in repo.units.items() if not u.external}
    units = {
        p: replace(u, dependencies=tuple(d for d in u.dependencies if d in keep)) for p, u in keep.items()
    }
    accounts = tuple(
        replace(a, units=tuple(p for p in a.units if p in keep))
        for a in repo.accounts
        if set(a.units) & set(keep)
    )
    return replace(repo, units=units, accounts=accounts)


# -- exports ------------------------------------------------------------------------------------
def to_json(repo: Repo) -> dict[str, object]:
    """The `refarch graph --format json` contract (schemas/graph.schema.json)."""
    return {
        "schema_version": GRAPH_SCHEMA_VERSION,
        "units": [
            {
                "path": u.path,
                "account": u.account,
                "account_id": u.account_id,
                "region": u.region,
                "tier": u.tier,
                "skip": u.skip,
                "external": u.external,
                "dependencies": list(u.dependencies),
                "source": u.source,
                "remote_state": None
                if u.remote_state is None
                else {"backend": u.remote_state.backend, "config": dict(u.remote_state.config)},
            }
            for u in repo.units.values()
        ],
    }


def to_dot(repo: Repo) -> str:
    """Graphviz: one cluster per account; edges point dependent -> dependency, as in
    `terragrunt graph-dependencies` / `terragrunt dag graph`, so tools reading its output read
    this one. Skipped units are dashed, external ones (outside the repo) dotted."""
    lines = ["digraph refarch {", "  rankdir=LR;", "  node [shape=box];"]
    for index, account in enumerate(repo.accounts):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={json.dumps(f'{account.name} (tier {account.tier})')};")
        for path in account.units:
            unit = repo.units[path]
            label = f"{path} (external)" if unit.external else path
            style = ' style="dotted"' if unit.external else ' style="dashed"' if unit.skip else ""
            lines.append(f"    {json.dumps(path)} [label={json.dumps(label)}{style}];")
        lines.append("  }")
    for unit in repo.units.values():
        for dep in unit.dependencies:
            lines.append(f"  {json.dumps(unit.path)} -> {json.dumps(dep)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(repo: Repo) -> str:
    """Mermaid flowchart: one subgraph per account."""
    ids = {path: f"u{i}" for i, path in enumerate(repo.units)}
    lines = ["flowchart LR"]
    for index, account in enumerate(repo.accounts):
        lines.append(f'  subgraph a{index}["{account.name} (tier {account.tier})"]')
        for path in account.units:
            unit = repo.units[path]
            suffix = " (external)" if unit.external else " (skip)" if unit.skip else ""
            lines.append(f'    {ids[path]}["{path}{suffix}"]')
        lines.append("  end")
    for unit in repo.units.values():
        for dep in unit.dependencies:
            lines.append(f"  {ids[dep]} --> {ids[unit.path]}")
    return "\n".join(lines) + "\n"
