"""Home-network key pairs for the SUCI (3GPP TS 33.501 §6.12, Annex C.3.4) held by the HSM.

A home-network private key is a data key like a Ki (design §2): made inside the boundary
(`suci_generate`) or imported encrypted under a vendor/ceremony transport KEK (`suci_import`,
the EKI schemes of hsm_sim.eki over the 32-octet private key), then kept wrapped in a KeyRef:

    key type  HNKeyA (Profile A, X25519) or HNKeyB (Profile B, secp256r1)
    owner     "suci-<key id>"  (the home network public key identifier, 0-255)

so a blob moved to another key identifier or presented as the other profile fails its integrity
check. Callers hold the KeyRef and the public key; `suci_deconceal` takes a scheme output and
returns the scheme input, never the key. Each operation is reported to the backend's audit sink
with the key identifier only (a de-concealment with its count, not the SUPI).

This module is a mixin of both backends, so the backends' files change by one base class each;
a backend supplies three hooks: `_suci_seal` (wrap a private key), `_suci_private` (the loaded
key of a ref, inside the boundary) and `_suci_transport` (decrypt an imported key). The PKCS#11
backend replaces `_suci_shared` so that the ECDH runs in the token (hsm_sim.suci_pkcs11).
Rotation (several identifiers live at once, a retired one refused) is the key registry's
(simcore.suci_keys): the HSM de-conceals with whatever ref it is handed.
"""

from __future__ import annotations

import threading
from typing import Any

from hsm_sim.ecies import (
    HomeNetworkPrivateKey,
    MacFailure,
    MalformedSchemeOutput,
    ProtectionScheme,
    open_scheme_output,
)
from hsm_sim.eki import EkiScheme
from hsm_sim.errors import BadLength, WrongKeyType, WrongOwner
from hsm_sim.hsm import AuditSink
from hsm_sim.keyref import KeyRef, KeyType

__all__ = ["KEY_TYPES", "SCHEMES", "SoftSuciKeys", "SuciKeys", "owner_of"]

KEY_TYPES = {ProtectionScheme.PROFILE_A: KeyType.HN_A, ProtectionScheme.PROFILE_B: KeyType.HN_B}
SCHEMES = {v: k for k, v in KEY_TYPES.items()}
_CACHE_MAX = 256  # loaded keys kept per HSM: one per live key identifier is plenty


def owner_of(key_id: int) -> str:
    """The owner a home-network key of identifier `key_id` is bound to."""
    if not isinstance(key_id, int) or not 0 <= key_id <= 255:
        raise BadLength(f"a home network public key identifier is 0 to 255, not {key_id!r}")
    return f"suci-{key_id}"


def _scheme_of(ref: KeyRef) -> ProtectionScheme:
    scheme = SCHEMES.get(ref.key_type)
    if scheme is None:
        raise WrongKeyType(f"expected a home-network key (HNKeyA or HNKeyB), got "
                           f"{ref.key_type.value}")
    return scheme


class SuciKeys:
    """SUCI operations of an HSM backend (mixed into SoftHsm and Pkcs11Hsm)."""

    backend: str
    _audit: AuditSink

    # --- hooks a backend provides ------------------------------------------------------------

    def _suci_seal(self, owner: str, key_type: KeyType, private: bytes) -> KeyRef:
        raise NotImplementedError

    def _suci_open(self, ref: KeyRef) -> bytes:
        """The private key bytes of a ref (inside the boundary only)."""
        raise NotImplementedError

    def _suci_transport(self, transport: str, scheme: EkiScheme, data: bytes) -> bytes:
        raise NotImplementedError

    def _suci_ready(self) -> None:
        """Raise HsmLocked when the HSM is closed (a loaded key must not outlive `close`)."""

    # --- loaded keys ----------------------------------------------------------------------------

    def _suci_private(self, ref: KeyRef) -> HomeNetworkPrivateKey:
        """The loaded key of `ref`, kept in this HSM's memory for the next SUCI of the same
        identifier (a UDM de-conceals with a handful of keys, millions of times)."""
        self._suci_ready()
        cache: dict[KeyRef, HomeNetworkPrivateKey] | None = getattr(
            self, "_suci_cache", None)
        if cache is None:
            cache = {}
            self._suci_cache = cache
            self._suci_lock = threading.Lock()
        key = cache.get(ref)  # the whole ref: type, owner, KEK and blob
        if key is None:
            key = HomeNetworkPrivateKey(_scheme_of(ref), self._suci_open(ref))
            with self._suci_lock:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[ref] = key
        return key

    def _suci_shared(self, ref: KeyRef, ephemeral: bytes) -> bytes:
        """Z of TS 33.501 C.3.3 between the ref's private key and an ephemeral public key."""
        return self._suci_private(ref).shared_secret(ephemeral)

    def _suci_check(self, ref: KeyRef, key_id: int | None) -> ProtectionScheme:
        if ref.backend != self.backend:
            raise WrongKeyType(f"{ref!r} belongs to the {ref.backend} backend")
        scheme = _scheme_of(ref)
        if key_id is not None and ref.owner != owner_of(key_id):
            raise WrongOwner(f"{ref.key_type.value} key of {ref.owner} used for key id {key_id}")
        return scheme

    # --- operations ----------------------------------------------------------------------------

    def suci_generate(self, key_id: int, scheme: ProtectionScheme) -> tuple[KeyRef, bytes]:
        """A new key pair of `scheme` for identifier `key_id`, made inside the boundary: the
        wrapped private key and the public key (32 octets for A, a compressed point for B)."""
        scheme = ProtectionScheme(scheme)
        if scheme not in KEY_TYPES:
            raise WrongKeyType(f"{scheme.label} has no home-network key")
        owner = owner_of(key_id)
        key = HomeNetworkPrivateKey.generate(scheme)
        ref = self._suci_seal(owner, KEY_TYPES[scheme], key.private_bytes())
        self._audit.record("suci.key_generate", owner, {"scheme": scheme.label})
        return ref, key.public_bytes()

    def suci_import(
        self, key_id: int, scheme: ProtectionScheme, data: bytes, transport: str,
        eki_scheme: EkiScheme = EkiScheme.AES128_ECB,
    ) -> tuple[KeyRef, bytes]:
        """Import a private key given encrypted under transport KEK `transport` (32 octets,
        X25519 scalar or secp256r1 big-endian integer, encrypted by an EKI scheme): wrapped for
        storage, with its public key. The clear key exists only inside this call."""
        scheme = ProtectionScheme(scheme)
        if scheme not in KEY_TYPES:
            raise WrongKeyType(f"{scheme.label} has no home-network key")
        owner = owner_of(key_id)
        if len(data) != 32:
            raise BadLength(f"an encrypted home-network private key is 32 octets, not "
                            f"{len(data)}")
        private = self._suci_transport(transport, EkiScheme(eki_scheme), data)
        key = HomeNetworkPrivateKey(scheme, private)  # refuses a scalar out of range
        ref = self._suci_seal(owner, KEY_TYPES[scheme], private)
        self._audit.record("suci.key_import", owner, {"scheme": scheme.label,
                                                      "transport": transport})
        return ref, key.public_bytes()

    def suci_public(self, ref: KeyRef) -> bytes:
        """The public key of a stored private key (to check a registry entry against it)."""
        self._suci_check(ref, None)
        return self._suci_private(ref).public_bytes()

    def suci_deconceal(self, ref: KeyRef, scheme_output: bytes, *, key_id: int | None = None,
                       audit: bool = True) -> bytes:
        """The scheme input of an ECIES scheme output (TS 33.501 C.3.3) with the key of `ref`:
        MalformedSchemeOutput or MacFailure, nothing partial. `key_id` (the SUCI's) must be
        the ref's (WrongOwner). `audit=False` leaves the record to a caller that batches."""
        scheme = self._suci_check(ref, key_id)
        try:
            plain = open_scheme_output(scheme, lambda r: self._suci_shared(ref, r),
                                       scheme_output)
        except (MacFailure, MalformedSchemeOutput) as e:
            if audit:
                self._audit.record("suci.deconceal", ref.owner,
                                   {"result": type(e).__name__})
            raise
        if audit:
            self._audit.record("suci.deconceal", ref.owner, {"result": "ok"})
        return plain


class SoftSuciKeys(SuciKeys):
    """The soft backend's hooks: hsm_sim.binding blobs under the storage KEK, like a Ki."""

    def _suci_ready(self) -> None:
        hsm: Any = self
        hsm._require_master()

    def _suci_seal(self, owner: str, key_type: KeyType, private: bytes) -> KeyRef:
        hsm: Any = self
        ref: KeyRef = hsm._wrap(owner, key_type, private)
        return ref

    def _suci_open(self, ref: KeyRef) -> bytes:
        hsm: Any = self
        key: bytes = hsm._unwrap(ref, ref.key_type)
        return key

    def _suci_transport(self, transport: str, scheme: EkiScheme, data: bytes) -> bytes:
        from hsm_sim.eki import decrypt_eki
        from hsm_sim.hsm import KekPurpose

        hsm: Any = self
        return decrypt_eki(scheme, hsm._kek(transport, KekPurpose.TRANSPORT), data)
