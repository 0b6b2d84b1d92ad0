"""The import graph of the code has no cycle (import-linter's contracts in ``make lint`` check the arrows).

Function-level imports count as much as module-level ones: a cycle hidden inside a function is a
cycle all the same.
"""

from __future__ import annotations

import grimp
import networkx as nx


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("backend", "processes", "udf")
    edges = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    cycles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert cycles == [], f"import cycles: {cycles}"
