"""A private CA as each trust setting names it: its PEM file (``ca_bundle``, ``SSL_CERT_FILE``)
and a hashed directory (``SSL_CERT_DIR``).

OpenSSL looks a CA up in a directory by the hash of its subject name (``openssl rehash``
names the files), so ``hashed_directory`` computes that hash in Python: SHA-1 of the
canonical encoding of the name (each RDN as a DER ``SET`` of ``SEQUENCE { OID, UTF8String }``
with the value trimmed, inner whitespace collapsed and lowercased; the RDNs concatenated
without the outer ``SEQUENCE``), its first four bytes read little-endian. That is OpenSSL's
``X509_NAME_hash_ex`` for the ASCII names trustme issues; a wrong hash would show up as the
``SSL_CERT_DIR`` case refusing the CA.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from tests.support.tls import Certificates, issue_certificates

__all__ = ["PrivateCA", "hashed_directory", "private_ca", "subject_hash"]


@dataclass(frozen=True)
class PrivateCA:
    """A fresh trustme CA: what it issued, its PEM file and a hashed directory holding it.

    Attributes:
        certs: The CA's file and server contexts (``tests.support.tls``).
        file: Path of the CA's PEM file.
        directory: A directory holding only the CA, named as OpenSSL looks it up.
    """

    certs: Certificates
    file: str
    directory: str


def private_ca(directory: Path) -> PrivateCA:
    """Create a CA in ``directory`` (its certificates, and a hashed ``store/`` beside them)."""
    certs = issue_certificates(directory)
    store = hashed_directory(certs.ca_bundle, directory / "store")
    return PrivateCA(certs, certs.ca_bundle, str(store))


def hashed_directory(ca_file: str, directory: Path) -> Path:
    """Write the CA in ``ca_file`` into ``directory`` as ``<subject hash>.0``."""
    pem = Path(ca_file).read_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{subject_hash(x509.load_pem_x509_certificate(pem))}.0").write_bytes(pem)
    return directory


def subject_hash(cert: x509.Certificate) -> str:
    """OpenSSL's subject hash of ``cert`` (``openssl x509 -hash``), for ASCII names."""
    canonical = b""
    for rdn in cert.subject.rdns:
        entries = sorted(
            _der(0x30, _oid(a.oid.dotted_string) + _der(0x0C, _canonical_value(a.value)))
            for a in rdn
        )
        canonical += _der(0x31, b"".join(entries))
    digest = hashlib.sha1(canonical).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def _canonical_value(value: str | bytes) -> bytes:
    text = value.decode() if isinstance(value, bytes) else value
    return " ".join(text.split()).lower().encode()


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    encoded = bytearray([40 * first + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        encoded += bytes(reversed(chunk))
    return _der(0x06, bytes(encoded))
