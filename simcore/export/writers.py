"""File exports for core networks that load subscribers from files or scripts.

- `open5gs-dbctl`: one `open5gs-dbctl add <IMSI> <K> <OPc>` line per subscriber (the
  open5gs-dbctl script of Open5GS `misc/db/`); clear keys only, so a clear (insecure) target only.
- `open5gs-json`: one MongoDB document per line for the `subscribers` collection
  (`mongoimport --db open5gs --collection subscribers FILE`), fields as Open5GS's WebUI writes
  them: imsi, msisdn, security {k, opc, op, amf, sqn}, ambr, slice/session, access restriction.
  `sqn` (and free5GC's `sequenceNumber`) is where the network starts: above the SQNs simsmith
  issued for the SIM (simcore.sqn_store.next_network_sqns), 0 for a SIM it never authenticated.
- `free5gc-json`: a JSON array of free5GC WebConsole subscriber bodies (`POST
  /api/subscriber/imsi-<IMSI>/<PLMN>`): AuthenticationSubscription with permanentKey/opc values
  and their `encryptionAlgorithm` / `encryptionKey` fields.
- `csv`: iccid, imsi, msisdn, ki, opc, key_form, kek, kek_kcv.

Encrypted targets: key fields hold the target's encrypted form (hex) and every file states the
algorithm, KEK and KCV (a `simsmithKeyEncryption` member in JSON, columns in CSV, a `#` comment
line for dbctl is refused because open5gs-dbctl would store the ciphertext as the key).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from simcore.errors import InvalidInput
from simcore.export.keys import ExportedSim, KeyForm

FORMATS = ("open5gs-dbctl", "open5gs-json", "free5gc-json", "csv")
_AMBR = {"downlink": {"value": 1, "unit": 3}, "uplink": {"value": 1, "unit": 3}}  # 1 Gbps


def _open5gs_doc(s: ExportedSim, form: KeyForm) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "imsi": s.imsi, "msisdn": [s.msisdn] if s.msisdn else [],
        "security": {"k": s.k.hex(), "opc": s.opc.hex(), "op": None, "amf": "8000",
                     "sqn": s.sqn},
        "ambr": _AMBR,
        "slice": [{"sst": 1, "default_indicator": True, "session": [{
            "name": "internet", "type": 3, "ambr": _AMBR, "pcc_rule": [],
            "qos": {"index": 9, "arp": {"priority_level": 8, "pre_emption_capability": 1,
                                        "pre_emption_vulnerability": 1}}}]}],
        "access_restriction_data": 32, "subscriber_status": 0, "network_access_mode": 0,
        "subscribed_rau_tau_timer": 12, "schema_version": 1, "__v": 0,
    }
    if not form.clear:
        doc["simsmithKeyEncryption"] = form.describe()
    return doc


def _free5gc_doc(s: ExportedSim, form: KeyForm, plmn: str) -> dict[str, Any]:
    enc = 0 if form.clear else 1  # non-zero: the value is encrypted (see simsmithKeyEncryption)
    doc: dict[str, Any] = {
        "plmnID": plmn, "ueId": f"imsi-{s.imsi}",
        "AuthenticationSubscription": {
            "authenticationManagementField": "8000", "authenticationMethod": "5G_AKA",
            "milenage": {"op": {"encryptionAlgorithm": 0, "encryptionKey": 0, "opValue": ""}},
            "opc": {"encryptionAlgorithm": enc, "encryptionKey": enc, "opcValue": s.opc.hex()},
            "permanentKey": {"encryptionAlgorithm": enc, "encryptionKey": enc,
                             "permanentKeyValue": s.k.hex()},
            "sequenceNumber": f"{s.sqn:012x}"},
        "AccessAndMobilitySubscriptionData": {
            "gpsis": [f"msisdn-{s.msisdn}"] if s.msisdn else [],
            "subscribedUeAmbr": {"downlink": "1 Gbps", "uplink": "1 Gbps"},
            "nssai": {"defaultSingleNssais": [{"sst": 1}]}},
    }
    if not form.clear:
        doc["simsmithKeyEncryption"] = form.describe()
    return doc


class FileWriter:
    """Writes one export file; `add()` pages of SIMs, `close()` finishes it atomically."""

    def __init__(self, path: Path, fmt: str, form: KeyForm, *, plmn: str | None = None) -> None:
        if fmt not in FORMATS:
            raise InvalidInput("format", f"unknown export format {fmt!r}",
                               expected=", ".join(FORMATS))
        if fmt == "open5gs-dbctl" and not form.clear:
            raise InvalidInput("format", "open5gs-dbctl stores what it is given as the key: "
                               "it needs a clear (insecure) target", value=fmt,
                               expected="open5gs-json, free5gc-json or csv for an encrypted target")
        self.path, self.fmt, self.form, self.plmn = Path(path), fmt, form, plmn
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # keys inside
        self.f: TextIO = os.fdopen(fd, "w", newline="")
        self.count = 0
        if fmt == "csv":
            self.f.write("iccid,imsi,msisdn,ki,opc,key_form,kek,kek_kcv\n")
        elif fmt == "free5gc-json":
            self.f.write("[")
        elif fmt == "open5gs-dbctl":
            self.f.write("#!/bin/sh\n# simsmith export: clear keys for an INSECURE target "
                         f"({form.target}); delete after use\nset -e\n")

    def add(self, sims: Iterable[ExportedSim]) -> None:
        buf = io.StringIO()
        if self.fmt == "csv":
            w = csv.writer(buf, lineterminator="\n")
            kek = "" if self.form.clear else self.form.target
            for s in sims:
                w.writerow([s.iccid, s.imsi, s.msisdn or "", s.k.hex(), s.opc.hex(),
                            self.form.scheme, kek, self.form.kcv or ""])
                self.count += 1
        elif self.fmt == "open5gs-dbctl":
            for s in sims:
                buf.write(f"open5gs-dbctl add {s.imsi} {s.k.hex()} {s.opc.hex()}\n")
                self.count += 1
        elif self.fmt == "open5gs-json":
            for s in sims:
                buf.write(json.dumps(_open5gs_doc(s, self.form), separators=(",", ":")) + "\n")
                self.count += 1
        else:
            for s in sims:
                plmn = self.plmn or s.imsi[:5]
                buf.write(("," if self.count else "") + "\n" + json.dumps(
                    _free5gc_doc(s, self.form, plmn), separators=(",", ":")))
                self.count += 1
        self.f.write(buf.getvalue())

    def close(self) -> None:
        if self.fmt == "free5gc-json":
            self.f.write("\n]\n")
        self.f.close()
        self.tmp.replace(self.path)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)
