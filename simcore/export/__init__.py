"""Handing subscribers to the network: osmo-hlr over CTRL, and files for Open5GS, free5GC and
generic loaders (docs/import.md "Export"). Keys leave only re-wrapped by the HSM for a named
target — in clear solely for a target explicitly marked insecure, and audited."""

from simcore.export.keys import ExportedSim, KeyForm, key_form, select_sims
from simcore.export.service import ExportReport, Selection, export_file, export_osmo_hlr

__all__ = ["ExportReport", "ExportedSim", "KeyForm", "Selection", "export_file",
           "export_osmo_hlr", "key_form", "select_sims"]
