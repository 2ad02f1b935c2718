"""The operations centre's own certificate authority, per lab.

The CA's and the endpoints' certificates live in ``.lab/<env>/pki/``; their private keys only in
the lab's encrypted store (:mod:`fellesdrift.credentials`). The CA signs the centre's TLS
endpoints.
Every host trusts it (the role ``common`` installs its certificate), so a site client checks
the finance endpoint's certificate against it. A certificate is issued again only when its
names change or it is close to expiry; otherwise each run hands the roles the same files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fellesdrift.access import credentials
from fellesdrift.paths import lab_dir

CA_DAYS = 3650
CERT_DAYS = 397
RENEW_DAYS = 30


@dataclass(frozen=True)
class Pem:
    cert: str
    key: credentials.Secret


def _dir(env: str) -> Path:
    return lab_dir(env) / "pki"


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load(env: str, name: str
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The certificate ``name`` and its key (from the encrypted store), None unless both exist."""
    cert_file = _dir(env) / f"{name}.crt"
    legacy = cert_file.with_suffix(".key")  # earlier versions kept the key beside it, in clear
    if legacy.exists():
        credentials.keep_private_key(env, f"pki/{name}", legacy.read_text())
        legacy.unlink()
    pem = credentials.private_key(env, f"pki/{name}")
    if not (cert_file.exists() and pem):
        return None
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(cert_file.read_bytes()), key


def _save(env: str, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    credentials.keep_private_key(env, f"pki/{name}", _pem(key))
    _dir(env).mkdir(parents=True, exist_ok=True)
    (_dir(env) / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_DAYS)


def authority(env: str, centre_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The lab's CA, made on first use."""
    found = _load(env, "ca")
    if found and _fresh(found[0]):
        return found
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, centre_name),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{centre_name} CA ({env})")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _save(env, "ca", cert, key)
    return cert, key


def ca_pem(env: str, centre_name: str) -> str:
    """The CA certificate, PEM."""
    return authority(env, centre_name)[0].public_bytes(serialization.Encoding.PEM).decode()


def _names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({str(n) for n in san.get_values_for_type(x509.DNSName)}
            | {str(n) for n in san.get_values_for_type(x509.IPAddress)})


def server(env: str, centre_name: str, dns_names: list[str], addresses: list[str]) -> Pem:
    """A server certificate for these names, signed by the lab's CA (reused while valid)."""
    ca_cert, ca_key = authority(env, centre_name)
    found = _load(env, dns_names[0])
    wanted = set(dns_names) | set(addresses)
    if not (found and _fresh(found[0]) and _names(found[0]) == wanted
            and found[0].issuer == ca_cert.subject):
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(_now() - dt.timedelta(minutes=5))
                .not_valid_after(_now() + dt.timedelta(days=CERT_DAYS))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _save(env, dns_names[0], cert, key)
        found = (cert, key)
    cert, key = found
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(),
               credentials.Secret(_pem(key)))
