"""``python -m hlx``: the ``hlx`` command line."""
import sys

from hlx_core.cli import main

sys.exit(main())
