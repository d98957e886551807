"""The command groups `cli.py` adds to `compress`, one file each; `common.py` holds what every command shares."""
