"""``python -m motionviz.mesh [OUT]``: rebuild the decimated Anny body template (``assets/anny_body.npz``)."""

from . import _main

_main()
