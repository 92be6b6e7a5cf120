"""What every tool does around its body: user errors become one line and exit code 1."""
from __future__ import annotations

import os
import sys
from typing import Callable

from .comm import cleanup

# Bad configs, paths, labels and checkpoints raise these with a message naming the culprit; a traceback
# would only bury it. SEGKIT_TRACEBACK=1 shows the traceback anyway, for debugging segkit itself.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, FloatingPointError)


def run_tool(body: Callable[[], None], extra_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run `body`; print `error: ...` and return 1 on a user error; always leave the process group."""
    try:
        body()
    except USER_ERRORS + extra_errors as e:
        if os.environ.get("SEGKIT_TRACEBACK"):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() adds quotes
        print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        cleanup()
    return 0
