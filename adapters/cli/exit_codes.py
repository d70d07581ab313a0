"""The exit statuses every `aniface` command uses."""

EXIT_OK = 0
EXIT_FAILED = 1        # the command ran, but some or all of its work failed (the output says which)
EXIT_USAGE = 2         # bad arguments or settings: nothing was done
EXIT_INTERRUPTED = 130  # Ctrl-C; commands that can resume say so
