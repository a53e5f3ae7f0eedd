import sys

from sglfleet_rehearsal.engine import main

sys.exit(main())
