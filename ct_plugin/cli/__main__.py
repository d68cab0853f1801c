"""``python -m ct_plugin.cli``: the ``ct-plugin`` command line."""

import sys

from ct_plugin.cli import main

sys.exit(main())
