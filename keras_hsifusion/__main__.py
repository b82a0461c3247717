"""`python -m keras_hsifusion ...` is the `khf` command line (`keras_hsifusion.cli`)."""

import sys

try:
    from keras_hsifusion.cli import main
except KeyboardInterrupt:  # Ctrl-C before the command line could catch it: still one line
    print("khf: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
