"""`python -m book ...`: the instructor's and author's commands (see book.cli)."""

import sys

from book.cli import main

sys.exit(main())
