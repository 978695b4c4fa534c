"""``netgaze.lab.data``: the lab's datasets under their shared-interface name (see ``netgaze.lab.datasets``)."""
from netgaze.lab.datasets import *  # noqa: F401,F403
from netgaze.lab.datasets import __all__  # noqa: F401
