"""The one-command demo (``netgaze demo``, ``make demo``): the seed reports' studies on embedded data.

- ``runner.py``: ``run_demo`` and the order of the steps (two groups, one process each);
- ``session.py``: the bookkeeping every step gets (timings, skip notes);
- ``settings.py``: the sizes (``DemoSettings``, full and ``quick``);
- ``processes.py``: the groups' worker processes (``python -m netgaze.demo --group``);
- ``steps/``: the steps that grew past a few lines.
"""
from netgaze.demo.runner import Demo, run_demo, set_aside_other_settings
from netgaze.demo.settings import DemoSettings, settings_json

__all__ = ["run_demo", "Demo", "DemoSettings", "settings_json", "set_aside_other_settings"]
