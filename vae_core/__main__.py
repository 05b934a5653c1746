"""`python -m vae_core train ...` and `python -m vae_core diagnose MODEL --data DATASET`."""
import sys

from .cli import main

sys.exit(main())
