"""Device profiles (YAML, one file per device) and the torch-free on-device script.

This folder is data for `pipeline.deploy.profiles`; it is a package only so that an installed copy
of the project finds the profiles beside its code.
"""

from pathlib import Path

PROFILES_DIR = Path(__file__).parent
