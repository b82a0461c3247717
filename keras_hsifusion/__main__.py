"""`python -m keras_hsifusion ...` is the `khf` command line (`keras_hsifusion.cli`)."""

import sys

from keras_hsifusion.cli import main

if __name__ == "__main__":
    sys.exit(main())
