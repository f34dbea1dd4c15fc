"""``python -m benchmarks``: the whole benchmark (``smartfarm bench`` runs this)."""

import sys

from benchmarks.suite import main

sys.exit(main())
