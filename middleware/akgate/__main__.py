import sys

from akgate.cli import main

sys.exit(main())
