"""``python -m netgaze.demo --group NAME ...``: one group of the demo's steps (its worker processes)."""
from netgaze.demo.runner import _main

raise SystemExit(_main())
