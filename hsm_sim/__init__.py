"""hsm_sim: key custody for subscriber secrets (Ki, OPc, OP, PIN/PUK/ADM, OTA keys).

A clear key exists only inside this package's boundary: a software HSM on `cryptography` by
default, a PKCS#11 token when the operator has one. Everything outside holds an opaque KeyRef.
Primitives: Milenage (3GPP TS 35.206), TUAK (TS 35.231), AES key wrap (RFC 3394/5649), KCVs.
This package knows nothing of the rest of simsmith except the error base class
simcore.errors.SimsmithError (the import-linter contracts in pyproject.toml check it).

Modules: milenage, tuak, gsm (c2..c5), kcv, eki (vendor transport encryption) are primitives;
keyref (KeyRef), hsm (the Hsm protocol, its AuditSink, vectors()), binding (blob formats),
ceremony, keystore and errors build the custody recipes on them; soft (SoftHsm) and pkcs11
(Pkcs11Hsm, with p11lib: module loading, p11pool: session pool, p11raw: direct calls on the
Milenage hot path) are the backends. See docs/hsm.md.
"""
