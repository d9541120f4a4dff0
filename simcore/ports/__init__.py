"""Ports: how simcore's services reach the network elements outside simsmith (design §1).

Each port is a small Protocol (hlr.py: the HLR/HSS) with its adapters beside it
(osmo_hlr.py: osmo-hlr over its CTRL interface). The SM-DP+'s port is simcore.smdp.port.
A port may use simcore's lower parts (export, identifiers, the HSM); nothing here imports
api/, tools/ or simcore.workflows.
"""
