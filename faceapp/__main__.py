import sys

from faceapp.cli.main import main

sys.exit(main())
