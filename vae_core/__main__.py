"""`python -m vae_core train ...` and `python -m vae_core diagnose MODEL --data DATASET`."""
import sys

from .limits import LimitError, limits

try:  # a bad VAE_EXPLORER_* setting is refused before torch is imported (seconds on a busy machine)
    limits()
except LimitError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)

from .cli import main  # noqa: E402  (after the check: it imports torch)

sys.exit(main())
