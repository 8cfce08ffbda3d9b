"""Mesh certificates for a deployment (compose's `certs` container); the launcher makes its own.

    python -m services.mesh.certs CA_DIR [IDENTITY=DIR ...]

Makes (once) the mesh CA and a certificate per identity of the registry in CA_DIR, then copies
into each DIR what that identity alone needs: ca.crt, <identity>.crt and <identity>.key (0600).
The CA's key never leaves CA_DIR. PICTOR_CERTS_OWNER=UID (compose runs this as root, since fresh
volumes are root's) hands every file and folder to the images' user.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from services.common.files import write_atomically
from services.common.mesh_tls import CA_NAME, ensure_certificates
from services.common.registry import mesh_identities


def hand_out(ca_dir: Path, identity: str, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, mode in ((f"{CA_NAME}.crt", 0o644), (f"{identity}.crt", 0o644), (f"{identity}.key", 0o600)):
        write_atomically(target / name, (ca_dir / name).read_bytes(), mode=mode)


def give(folder: Path, owner: int) -> None:
    for path in (folder, *folder.iterdir()):
        os.chown(path, owner, owner)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    ca_dir = Path(argv[0])
    owner = os.environ.get("PICTOR_CERTS_OWNER")
    ensure_certificates(ca_dir, mesh_identities())
    folders = [ca_dir]
    for assignment in argv[1:]:
        identity, _, target = assignment.partition("=")
        if identity not in mesh_identities() or not target:
            raise SystemExit(f"expected IDENTITY=DIR with an identity of {mesh_identities()}, got {assignment!r}")
        hand_out(ca_dir, identity, Path(target))
        folders.append(Path(target))
    if owner:
        for folder in folders:
            give(folder, int(owner))


if __name__ == "__main__":
    main(sys.argv[1:])
