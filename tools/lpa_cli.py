"""`simsmith lpa`: simsmith's Local Profile Assistant over PC/SC (esim.lpa: ES10 to any eUICC
in any reader)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from tools.common import (
    JsonOpt,
    console,
    err_console,
    fail,
    handle_errors,
    print_json,
    print_table,
)

app = typer.Typer(no_args_is_help=True)
ReaderOpt = typer.Option("0", "--reader", "-r", help="Reader index (see card list-readers) or "
                         "name.")
BlockOpt = typer.Option(120, "--block", help="STORE DATA block size, 6..255 bytes.")


@contextmanager
def _functions(reader: str, block: int) -> Iterator[Any]:
    from cards.pcsc import PcscTransport
    from esim.lpa.functions import Es10Functions
    from simcore.euicc import es10_session

    with PcscTransport(int(reader) if reader.isdigit() else reader) as transport, \
            es10_session(transport, block) as es10:
        yield Es10Functions(es10.call)


def _done(as_json: bool, message: str, **fields: Any) -> None:
    if as_json:
        print_json({"result": "ok", **fields})
    else:
        console.print(message, markup=False)


@app.command("info")
@handle_errors
def info_cmd(reader: str = ReaderOpt, block: int = BlockOpt, as_json: bool = JsonOpt) -> None:
    """EID, EUICCInfo2 and the configured SM-DP+/SM-DS addresses."""
    from esim.sgp22 import schema

    with _functions(reader, block) as f:
        eid = f.eid()
        info2 = schema.decode("EUICCInfo2", f.euicc_info2())
        addresses = f.call(bytes.fromhex("BF3C00"))
    out = {"eid": eid,
           "svn": ".".join(str(b) for b in info2["svn"]),
           "profile_version": ".".join(str(b) for b in info2["profileVersion"]),
           "firmware": ".".join(str(b) for b in info2["euiccFirmwareVer"]),
           "ci_pkids": [k.hex() for k in info2["euiccCiPKIdListForVerification"]],
           "sas_accreditation": info2["sasAcreditationNumber"],
           "addresses": addresses.hex().upper()}
    if as_json:
        print_json(out)
        return
    for key, value in out.items():
        console.print(f"{key}: {value}", markup=False)


@app.command("profiles")
@handle_errors
def profiles_cmd(reader: str = ReaderOpt, block: int = BlockOpt, as_json: bool = JsonOpt) -> None:
    """The installed profiles (GetProfilesInfo)."""
    with _functions(reader, block) as f:
        profiles = f.profiles()
    if as_json:
        print_json(profiles)
        return
    print_table("profiles", ["ICCID", "state", "class", "provider", "name", "nickname"],
                [[p["iccid"], p["state"], p["profile_class"], p["service_provider_name"],
                  p["profile_name"], p["nickname"]] for p in profiles])


def _profile_op(name: str, op: Callable[[Any], None], reader: str, block: int,
                as_json: bool, iccid: str) -> None:
    with _functions(reader, block) as f:
        op(f)
    _done(as_json, f"{name} {iccid}: ok", iccid=iccid)


@app.command("enable")
@handle_errors
def enable_cmd(iccid: str, reader: str = ReaderOpt, block: int = BlockOpt,
               as_json: bool = JsonOpt) -> None:
    """Enable a profile (EnableProfile; the enabled one is disabled first)."""
    _profile_op("enabled", lambda f: f.enable(iccid), reader, block, as_json, iccid)


@app.command("disable")
@handle_errors
def disable_cmd(iccid: str, reader: str = ReaderOpt, block: int = BlockOpt,
                as_json: bool = JsonOpt) -> None:
    """Disable a profile (DisableProfile)."""
    _profile_op("disabled", lambda f: f.disable(iccid), reader, block, as_json, iccid)


@app.command("delete")
@handle_errors
def delete_cmd(iccid: str, reader: str = ReaderOpt, block: int = BlockOpt,
               as_json: bool = JsonOpt) -> None:
    """Delete a disabled profile (DeleteProfile)."""
    _profile_op("deleted", lambda f: f.delete(iccid), reader, block, as_json, iccid)


@app.command("nickname")
@handle_errors
def nickname_cmd(iccid: str, nickname: str, reader: str = ReaderOpt, block: int = BlockOpt,
                 as_json: bool = JsonOpt) -> None:
    """Set a profile's nickname (SetNickname)."""
    _profile_op("nickname set on", lambda f: f.set_nickname(iccid, nickname), reader, block,
                as_json, iccid)


CaOpt = typer.Option(None, "--ca-bundle", envvar="SIMSMITH_LPA_CA_BUNDLE",
                     help="CA bundle (PEM) the SM-DP+'s TLS certificate must chain to "
                     "(default: the system trust store). TLS is always verified.")


@app.command("download")
@handle_errors
def download_cmd(
    activation_code: str = typer.Argument(..., help="'LPA:1$<SM-DP+ address>$<matching ID>'"),
    confirmation_code: str | None = typer.Option(
        None, "--confirmation-code", help="When the SM-DP+ requires one (never printed)."),
    ca_bundle: Path | None = CaOpt,
    reader: str = ReaderOpt, block: int = BlockOpt, as_json: bool = JsonOpt,
) -> None:
    """Download and install a profile: ES9+ to the SM-DP+ over HTTPS, ES10 to the eUICC."""
    from esim.activation_code import ActivationCode
    from esim.lpa.download import download
    from esim.lpa.es9_client import HttpEs9

    address = (ActivationCode.from_uri(activation_code, lab=True)
               if activation_code[:4].upper() == "LPA:"
               else ActivationCode.parse(activation_code, lab=True)).smdp_address
    progress = None if as_json else (lambda step: err_console.print(step, markup=False))
    with _functions(reader, block) as f, HttpEs9(address, ca_bundle=ca_bundle) as es9:
        result = download(f, es9, activation_code, confirmation_code=confirmation_code,
                          progress=progress)
    if as_json:
        print_json(asdict(result))
    elif result.success:
        console.print(f"installed {result.iccid} (transaction {result.transaction_id}); "
                      f"notification {'delivered' if result.notification_sent else 'pending'}",
                      markup=False)
    if not result.success:
        fail(f"the eUICC refused the profile: {result.error}")


@app.command("notifications")
@handle_errors
def notifications_cmd(
    remove: list[int] = typer.Option([], "--remove", help="Remove this sequence number "
                                     "(repeatable), e.g. after it was delivered."),
    process: bool = typer.Option(False, "--process", help="Send every pending notification to "
                                 "its SM-DP+ (ES9+.HandleNotification), remove the delivered."),
    ca_bundle: Path | None = CaOpt,
    reader: str = ReaderOpt, block: int = BlockOpt, as_json: bool = JsonOpt,
) -> None:
    """List the eUICC's pending notifications (ListNotification); --remove drops some,
    --process delivers them."""
    from esim.lpa.download import process_notifications
    from esim.lpa.es9_client import HttpEs9
    from esim.sgp22.notifications import NotificationEvent

    with _functions(reader, block) as f:
        removed = {seq: f.remove_notification(seq) for seq in remove}
        delivered = process_notifications(
            f, lambda address: HttpEs9(address, ca_bundle=ca_bundle)) if process else []
        listed = f.list_notifications()
    rows = [{"seq": m["seqNumber"],
             "event": NotificationEvent.decode(m["profileManagementOperation"],
                                               "profileManagementOperation").name.lower(),
             "address": m["notificationAddress"],
             "iccid": m["iccid"].hex() if m.get("iccid") else None} for m in listed]
    if as_json:
        print_json({"notifications": rows,
                    "delivered": {str(k): ok for k, ok in delivered},
                    "removed": {str(k): ("ok" if v == 0 else "nothingToDelete")
                                for k, v in removed.items()}})
        return
    print_table("pending notifications", ["seq", "event", "address", "ICCID"],
                [[r["seq"], r["event"], r["address"], r["iccid"]] for r in rows])
