"""`python -m attend`: prints what `attend info` prints."""
import sys

import attend

sys.stdout.write(attend.info())
