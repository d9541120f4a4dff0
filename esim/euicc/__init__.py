"""The virtual eUICC (GSMA SGP.22 v2.x): a sans-I/O core answering ES10a/b/c functions, with
its profile and notification store in a state file.

    store       the eUICC's non-volatile state: profiles, pending notifications (§5.7.9)
    loader      ES10b.LoadBoundProfilePackage (§5.7.6, §2.5.5–2.5.6) segment by segment
    es10        the ES10 function dispatcher (§5.7): GetEUICCChallenge, GetEUICCInfo1/2,
                AuthenticateServer, PrepareDownload, LoadBoundProfilePackage, CancelSession,
                notifications, GetEID

The SGP.22 cryptography (certificates, signatures, BSP, BPP opening) is esim.sgp22's; this
package keeps the card's state and sequencing around it. No I/O except the state file.
"""
