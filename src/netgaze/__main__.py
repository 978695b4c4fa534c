import sys

from netgaze.cli import main

sys.exit(main())
