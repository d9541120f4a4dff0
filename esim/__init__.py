"""esim: GSMA SGP.22 / TCA SAIP profile packages, activation codes, QR codes and install links,
and the ES2+ interface to an SM-DP+ (SGP.22 §5.3).

Never imports api/, tools/ or the database parts of simcore.
"""
