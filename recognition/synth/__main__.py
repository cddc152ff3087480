import sys

from recognition.synth.cli import main

sys.exit(main())
