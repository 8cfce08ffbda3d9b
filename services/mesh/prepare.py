"""One-shot preparation for a deployment: migrations and the signing key.

The embedded launcher does the same before it starts the services.
"""

from __future__ import annotations

import logging

from services.common.auth import ensure_signing_key
from services.common.config import Settings, load_settings
from services.common.db import migrate


def prepare(settings: Settings) -> None:
    migrate(settings)
    ensure_signing_key(settings.jwt_private_key_file, settings.jwks_file)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    prepare(load_settings())


if __name__ == "__main__":
    main()
