"""The pages people read: every HTML report runway writes, from one template engine and one stylesheet.

- ``render.py``: Jinja2 (autoescaped, strict), ``render(template, ...)``, the ``Verdict`` every page opens with;
- ``templates/``: ``base.html`` (title, verdict at a glance, details), ``macros.html`` (tables, lists),
  ``report.css`` (the one stylesheet, inlined into every page so that a page is one self-contained file), and one
  template per page;
- ``charts.py``: the charts (matplotlib, SVG inlined into the page), imported only where a chart is drawn;
- ``store.py``: where pages are filed (``$RUNWAY_HOME/reports/<pipeline>/<run id>/``), written atomically;
- ``node_page.py``: the page of one node's execution, linked from its Airflow task.
"""

from __future__ import annotations

from pipeline_components.reports.render import Verdict, cell, render

__all__ = ["Verdict", "cell", "render"]
