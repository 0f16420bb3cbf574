"""The only networkx importer: the unit DAG, its checks (cycles, tiers), selection and exports."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import networkx as nx

from refarch.errors import ConfigError, DependencyCycle
from refarch.models import Repo, Unit


def build_graph(units: Mapping[str, Unit]) -> nx.DiGraph[str]:
    """Edges run dependency -> dependent, so a topological order is an apply order."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(units)
    for unit in units.values():
        graph.add_edges_from((dep, unit.path) for dep in unit.dependencies)
    return graph


def check(repo: Repo, graph: nx.DiGraph[str] | None = None) -> nx.DiGraph[str]:
    """Raise ConfigError for a dependency cycle or a dependency on a later account tier."""
    graph = build_graph(repo.units) if graph is None else graph
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        # find_cycle walks dependency -> dependent; print it as "depends on" arrows.
        nodes = [edge[0] for edge in cycle]
        nodes.reverse()
        start = nodes.index(min(nodes))
        raise DependencyCycle(nodes[start:] + nodes[:start])
    for dep, dependent in graph.edges:
        a, b = repo.units[dep], repo.units[dependent]
        if a.tier > b.tier:
            raise ConfigError(
                f"{b.path} (account {b.account}, tier {b.tier}) depends on {a.path} "
                f"(account {a.account}, tier {a.tier}), which deploys in a later tier",
                path=f"{b.path}/terragrunt.hcl",
                hint="move the dependency's account to an earlier tier in refarch.toml, "
                "or remove the dependency",
            )
    return graph


def matches(path: str, patterns: Iterable[str]) -> bool:
    """Glob match over unit paths; a plain folder also matches everything below it."""
    for raw in patterns:
        pattern = raw.strip("/").removeprefix("./")
        if fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/") or path == pattern:
            return True
    return False


def ancestors(graph: nx.DiGraph[str], nodes: Iterable[str]) -> set[str]:
    """Everything the nodes depend on, transitively."""
    found: set[str] = set()
    for node in nodes:
        found |= nx.ancestors(graph, node)
    return found


def tier_generations(graph: nx.DiGraph[str], tiers: Sequence[Sequence[str]]) -> list[list[str]]:
    """Groups that may run in parallel: tier by tier, dependency generations inside a tier."""
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
    """The `refarch graph --format json` contract."""
    return {
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
        ]
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
