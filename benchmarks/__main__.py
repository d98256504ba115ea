"""``python -m benchmarks``: run the peer benchmark suite and write benchmarks/RESULTS.md."""

import sys

from benchmarks import main

sys.exit(main())
