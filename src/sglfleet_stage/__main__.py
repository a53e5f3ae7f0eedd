import sys

from sglfleet_stage.cli import main

sys.exit(main())
