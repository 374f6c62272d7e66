"""``python -m motionviz <verb>``: the command-line interface of :mod:`motionviz.cli`."""

import sys

from .cli import main

sys.exit(main())
