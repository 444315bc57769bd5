"""``python -m usermgmt.cli``: the same as the ``usermgmt`` command."""

import sys

from usermgmt.cli import main

sys.exit(main())
