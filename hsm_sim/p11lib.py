"""Loading a PKCS#11 module once per process (PKCS#11 v2.40 §5.4, C_Initialize; §5.1.6 and
§6.7.6-6.7.7 on threads) and the one login session it keeps per token.

python-pkcs11 initialises a module with NULL arguments, which tells a module such as SoftHSM2 that
no two threads call it at once (it turns its internal locks off). The first load of a module in
the process re-initialises it with CKF_OS_LOCKING_OK before any session is open, so a session
pool may call it from several threads; if that is refused or the module was loaded by someone
else first, `Library.threadsafe` is False and callers serialise on `Library.lock`.
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import pkcs11

from hsm_sim.errors import HsmError, HsmLocked

CKF_OS_LOCKING_OK = 0x00000002


class InitArgs(ctypes.Structure):
    """CK_C_INITIALIZE_ARGS (PKCS#11 v2.40 §3.6): no mutex callbacks, the OS's locking."""

    _fields_ = [("CreateMutex", ctypes.c_void_p), ("DestroyMutex", ctypes.c_void_p),
                ("LockMutex", ctypes.c_void_p), ("UnlockMutex", ctypes.c_void_p),
                ("flags", ctypes.c_ulong), ("pReserved", ctypes.c_void_p)]


def os_locking(module: str) -> bool:
    """Re-initialise `module` (just initialised by python-pkcs11 with NULL arguments, no session
    open yet) with CKF_OS_LOCKING_OK. False when the module does not export C_Finalize and
    C_Initialize or refuses the flag (then it is back to python-pkcs11's initialisation)."""
    try:
        so = ctypes.CDLL(module)  # the same dlopen handle, hence the same library state
        finalize, initialize = so.C_Finalize, so.C_Initialize
    except (OSError, AttributeError):
        return False
    finalize.argtypes, finalize.restype = [ctypes.c_void_p], ctypes.c_ulong
    initialize.argtypes, initialize.restype = [ctypes.c_void_p], ctypes.c_ulong
    if finalize(None) != 0:
        return False
    args = InitArgs(flags=CKF_OS_LOCKING_OK)
    if initialize(ctypes.byref(args)) == 0:
        return True
    rv = initialize(None)
    if rv != 0:
        raise HsmError(f"PKCS#11 module {module} cannot be initialised again (CK_RV {rv:#x})")
    return False


@dataclass
class Library:
    """A module as this process uses it: python-pkcs11's lib, whether its calls may run in
    parallel (CKF_OS_LOCKING_OK), and the one login session per token."""

    lib: Any
    threadsafe: bool
    lock: threading.RLock = field(default_factory=threading.RLock)
    logins: dict[str, list[Any]] = field(default_factory=dict)  # label -> [session, users]

    def guard(self) -> AbstractContextManager[Any]:
        """Around calls outside a pooled session: the library lock unless thread-safe."""
        return nullcontext() if self.threadsafe else self.lock

    def login(self, token: Any, label: str, pin: str) -> None:
        with self.lock:
            held = self.logins.get(label)
            if held is not None:
                held[1] += 1
                return
            try:
                session = token.open(user_pin=pin, rw=True)
            except pkcs11.PinIncorrect:
                raise HsmLocked(f"the PIN for token {label!r} is wrong") from None
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # Logged in outside hsm_sim: login state is per application, keep a session.
                session = token.open(rw=True)
            self.logins[label] = [session, 1]

    def logout(self, label: str) -> None:
        with self.lock:
            held = self.logins.get(label)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:
                del self.logins[label]
                held[0].close()  # C_Logout (if it logged in) and C_CloseSession


LIBRARIES: dict[str, Library] = {}
LIBRARIES_LOCK = threading.Lock()


def library(module: str) -> Library:
    with LIBRARIES_LOCK:
        known = LIBRARIES.get(module)
        if known is not None:
            return known
        first = module not in getattr(pkcs11, "_loaded", {})
        lib = pkcs11.lib(module)
        known = LIBRARIES[module] = Library(lib, first and os_locking(module))
        return known
