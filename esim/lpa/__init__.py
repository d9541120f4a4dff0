"""simsmith's Local Profile Assistant (GSMA SGP.22 v2.x §3.1, §5.7 ES10 and §5.6 ES9+ as the
LPAd uses them), sans I/O: what to send to the eUICC and the SM-DP+, in which order.

    bpp_segments  §2.5.5: cutting a Bound Profile Package into ES10b.LoadBoundProfilePackage
                  commands
"""
