"""The few PKCS#11 v2.40 calls of the per-subscriber hot path, made through ctypes.

python-pkcs11 wraps every new object in a Python object by reading its attributes back (three
token calls) and builds an operation object per C_Encrypt; for Milenage with a different Ki on
every call that is most of the time (docs/hsm.md "PKCS#11 backend"). This module makes the calls
directly on a session python-pkcs11 opened and logged in, from the same loaded module (the same
dlopen handle, hence the same library state):

- C_UnwrapKey (CKM_AES_KEY_WRAP_PAD, RFC 5649; v2.40 §2.14.4) into a session key, no read-back;
- C_EncryptInit / C_EncryptUpdate ×n / C_EncryptFinal with CKM_AES_ECB (§2.10.3), so TEMP and
  then OUT1..OUTn take one operation;
- C_EncryptInit / C_Encrypt and C_DecryptInit / C_Decrypt with CKM_AES_GCM (§2.10.8,
  CK_GCM_PARAMS with ulIvBits as in v2.40);
- C_DestroyObject.

Functions are looked up by their exported names; a module that does not export them gets
`RawUnavailable` and hsm_sim stays on python-pkcs11. Callers hold the session's lock: a session is
used by one thread at a time (§5.1.6).
"""

from __future__ import annotations

import ctypes
from typing import Any

from hsm_sim.errors import HsmError

__all__ = ["CKR_OK", "RawFailed", "RawSession", "RawUnavailable", "raw_module"]

CKR_OK = 0
CKM_AES_ECB = 0x1081
CKM_AES_GCM = 0x1087
CKM_AES_KEY_WRAP_PAD = 0x210A
CKO_SECRET_KEY = 4
CKK_AES = 0x1F
CKA_CLASS, CKA_TOKEN, CKA_PRIVATE = 0x0, 0x1, 0x2
CKA_KEY_TYPE, CKA_SENSITIVE, CKA_ENCRYPT = 0x100, 0x103, 0x104
CKA_EXTRACTABLE = 0x162

_UL = ctypes.c_ulong


class RawUnavailable(HsmError):
    """The PKCS#11 module does not export the functions this module calls."""


class RawFailed(HsmError):
    """A token call returned a CK_RV other than CKR_OK."""

    def __init__(self, call: str, rv: int) -> None:
        super().__init__(f"{call} returned CK_RV {rv:#x}")
        self.call, self.rv = call, rv


class _Mechanism(ctypes.Structure):
    _fields_ = [("mechanism", _UL), ("pParameter", ctypes.c_void_p), ("ulParameterLen", _UL)]


class _GcmParams(ctypes.Structure):
    _fields_ = [("pIv", ctypes.c_char_p), ("ulIvLen", _UL), ("ulIvBits", _UL),
                ("pAAD", ctypes.c_char_p), ("ulAADLen", _UL), ("ulTagBits", _UL)]


class _Attribute(ctypes.Structure):
    _fields_ = [("type", _UL), ("pValue", ctypes.c_void_p), ("ulValueLen", _UL)]


_NAMES = ("C_UnwrapKey", "C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal",
          "C_DecryptInit", "C_Decrypt", "C_DestroyObject")
_P = ctypes.c_void_p
_PUL = ctypes.POINTER(_UL)
_ARGTYPES = {
    "C_UnwrapKey": [_UL, _P, _UL, ctypes.c_char_p, _UL, _P, _UL, _PUL],
    "C_EncryptInit": [_UL, _P, _UL],
    "C_DecryptInit": [_UL, _P, _UL],
    "C_Encrypt": [_UL, ctypes.c_char_p, _UL, _P, _PUL],
    "C_Decrypt": [_UL, ctypes.c_char_p, _UL, _P, _PUL],
    "C_EncryptUpdate": [_UL, ctypes.c_char_p, _UL, _P, _PUL],
    "C_EncryptFinal": [_UL, _P, _PUL],
    "C_DestroyObject": [_UL, _UL],
}
_MODULES: dict[str, Any] = {}


def raw_module(path: str) -> Any:
    """The module's exported C_ functions (RawUnavailable if any is missing)."""
    so = _MODULES.get(path)
    if so is None:
        try:
            so = ctypes.CDLL(path)
            for name in _NAMES:
                fn = getattr(so, name)
                fn.restype = _UL
                fn.argtypes = _ARGTYPES[name]
        except (OSError, AttributeError) as e:
            raise RawUnavailable(f"PKCS#11 module {path} does not export {_NAMES}: {e}") from None
        _MODULES[path] = so
    return so


def _bool_attr(kind: int, value: bool, keep: list[Any]) -> _Attribute:
    b = ctypes.c_ubyte(1 if value else 0)
    keep.append(b)
    return _Attribute(kind, ctypes.cast(ctypes.byref(b), ctypes.c_void_p), 1)


def _ulong_attr(kind: int, value: int, keep: list[Any]) -> _Attribute:
    v = _UL(value)
    keep.append(v)
    return _Attribute(kind, ctypes.cast(ctypes.byref(v), ctypes.c_void_p), ctypes.sizeof(_UL))


class _Template:
    """A CK_ATTRIBUTE array and the buffers it points into."""

    def __init__(self, *, sensitive: bool, extractable: bool) -> None:
        keep: list[Any] = []
        attrs = [
            _ulong_attr(CKA_CLASS, CKO_SECRET_KEY, keep),
            _ulong_attr(CKA_KEY_TYPE, CKK_AES, keep),
            _bool_attr(CKA_TOKEN, False, keep),
            # A session key for one call: kept out of SoftHSM2's encryption of private objects
            # in memory (CKA_PRIVATE false); still sensitive and, for Milenage, non-extractable.
            _bool_attr(CKA_PRIVATE, False, keep),
            _bool_attr(CKA_SENSITIVE, sensitive, keep),
            _bool_attr(CKA_EXTRACTABLE, extractable, keep),
            _bool_attr(CKA_ENCRYPT, True, keep),
        ]
        self.array = (_Attribute * len(attrs))(*attrs)
        self.count = _UL(len(attrs))
        self._keep = keep


_KERNEL = _Template(sensitive=True, extractable=False)
_ECB = _Mechanism(CKM_AES_ECB, None, 0)
_KWP = _Mechanism(CKM_AES_KEY_WRAP_PAD, None, 0)


class RawSession:
    """Direct calls on one open session (`handle`: its CK_SESSION_HANDLE). The mechanism and
    parameter structures and the output buffer are the session's own, reused call after call:
    a session serves one thread at a time."""

    __slots__ = ("_ecb", "_gcm", "_gcm_mech", "_h", "_kwp", "_len", "_lenp", "_out", "_so")

    def __init__(self, so: Any, handle: int) -> None:
        self._so = so
        self._h = handle
        self._out = ctypes.create_string_buffer(4096)
        self._len = _UL(0)
        self._lenp = ctypes.byref(self._len)
        self._gcm = _GcmParams(None, 12, 96, None, 0, 128)
        self._gcm_mech = ctypes.byref(_Mechanism(
            CKM_AES_GCM, ctypes.cast(ctypes.byref(self._gcm), ctypes.c_void_p),
            ctypes.sizeof(self._gcm)))
        self._ecb = ctypes.byref(_ECB)
        self._kwp = ctypes.byref(_KWP)

    def unwrap_kernel_key(self, unwrapping_key: int, wrapped: bytes) -> int:
        """A non-extractable, sensitive AES session key for C_Encrypt from an RFC 5649 blob."""
        handle = _UL(0)
        rv = self._so.C_UnwrapKey(self._h, self._kwp, unwrapping_key, wrapped, len(wrapped),
                                  _KERNEL.array, _KERNEL.count, ctypes.byref(handle))
        if rv != CKR_OK:
            raise RawFailed("C_UnwrapKey", rv)
        return int(handle.value)

    def destroy(self, obj: int) -> None:
        rv = self._so.C_DestroyObject(self._h, obj)
        if rv != CKR_OK:
            raise RawFailed("C_DestroyObject", rv)

    def ecb_kernel(self, key: int) -> EcbKernel:
        """E_K as one multi-part AES-ECB operation with `key` (hsm_sim.milenage.Kernel)."""
        return EcbKernel(self, key)

    def _aead(self, decrypt: bool, key: int, nonce: bytes, aad: bytes, data: bytes) -> bytes:
        if len(nonce) != 12:
            raise ValueError("an AES-GCM nonce here has 12 bytes")
        g = self._gcm
        g.pIv, g.pAAD, g.ulAADLen = nonce, aad, len(aad)
        so = self._so
        init, call = (so.C_DecryptInit, so.C_Decrypt) if decrypt else (so.C_EncryptInit,
                                                                         so.C_Encrypt)
        rv = init(self._h, self._gcm_mech, key)
        if rv != CKR_OK:
            raise RawFailed("C_DecryptInit" if decrypt else "C_EncryptInit", rv)
        self._len.value = 4096
        rv = call(self._h, data, len(data), self._out, self._lenp)
        if rv != CKR_OK:
            raise RawFailed("C_Decrypt" if decrypt else "C_Encrypt", rv)
        return self._out.raw[: self._len.value]

    def gcm_encrypt(self, key: int, nonce: bytes, aad: bytes, data: bytes) -> bytes:
        """AES-GCM with a 12-byte nonce and a 128-bit tag: ciphertext || tag."""
        return self._aead(False, key, nonce, aad, data)

    def gcm_decrypt(self, key: int, nonce: bytes, aad: bytes, data: bytes) -> bytes:
        """The plaintext of ciphertext || tag; RawFailed when the tag does not verify."""
        return self._aead(True, key, nonce, aad, data)


class EcbKernel:
    """One C_EncryptInit(CKM_AES_ECB), begun at the first update(), then C_EncryptUpdate per
    call; finish() ends it (C_EncryptFinal), and must run before the session is used otherwise."""

    __slots__ = ("_active", "_key", "_raw")

    def __init__(self, raw: RawSession, key: int) -> None:
        self._raw = raw
        self._key = key
        self._active = False

    def __repr__(self) -> str:
        return "EcbKernel(<token key>)"

    def update(self, data: bytes) -> bytes:
        raw = self._raw
        if not self._active:
            rv = raw._so.C_EncryptInit(raw._h, raw._ecb, self._key)
            if rv != CKR_OK:
                raise RawFailed("C_EncryptInit", rv)
            self._active = True
        raw._len.value = 4096
        rv = raw._so.C_EncryptUpdate(raw._h, data, len(data), raw._out, raw._lenp)
        if rv != CKR_OK:
            self._active = False  # a failed C_EncryptUpdate ends the operation (v2.40 §5.8)
            raise RawFailed("C_EncryptUpdate", rv)
        return raw._out.raw[: raw._len.value]

    def finish(self) -> None:
        if not self._active:
            return
        self._active = False
        raw = self._raw
        raw._len.value = 4096
        rv = raw._so.C_EncryptFinal(raw._h, raw._out, raw._lenp)
        if rv != CKR_OK:
            raise RawFailed("C_EncryptFinal", rv)
