"""``python -m cli``: the ``smartfarm`` command."""

import sys

from cli.main import main

sys.exit(main())
